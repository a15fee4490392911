//! Pools and their licence keys and bundles: what administrators manage and a client's users
//! read. Changes that could leave a checkout refusing for good (a bundle without keys, a pool
//! with seats out) lock the keys they judge first.

use super::*;

impl Licentia {
    pub(super) async fn pool_row(&self, pool_id: i64) -> Result<PoolRow> {
        sqlx::query_as(&format!("{POOL_SELECT} WHERE p.id = $1"))
            .bind(pool_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The pool"))
    }

    pub(super) fn require_pool_access(&self, actor: &CurrentUser, pool: &PoolRow) -> Result<()> {
        match pool.client_id {
            Some(c) => self.require_client_access(actor, c),
            None => require_admin(actor),
        }
    }

    pub(super) async fn pool_view(&self, row: PoolRow) -> Result<Pool> {
        let (keys, in_use): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(in_use) AS BIGINT) FROM pool_keys WHERE pool_id = $1",
        )
        .bind(row.id)
        .fetch_one(self.db.pool())
        .await?;
        let lending = row.lending();
        let silent_seats = row.silent_seats();
        let previous_key_until: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(works_until) FROM pool_previous_keys WHERE pool_id = $1 \
             AND works_until > $2",
        )
        .bind(row.id)
        .bind(self.clock.now())
        .fetch_one(self.db.pool())
        .await?;
        Ok(Pool {
            id: row.id,
            name: row.name,
            client_id: row.client_id,
            serial_id: row.serial_id,
            owner: row.owner,
            access_key: format!("{}…", row.key_head),
            key_rotated_at: row.key_rotated_at,
            previous_key_until,
            max_tokens_per_checkout: row.max_tokens_per_checkout,
            lease_secs: row.lease_secs,
            silent_seats,
            keys,
            in_use: in_use.unwrap_or(0),
            created_at: row.created_at,
            mobile_allowed: row.mobile_allowed != 0,
            max_borrow_days: row.max_borrow_days,
            borrow_days: lending.ok(),
            lending_off: lending.err().map(|e| e.to_string()),
        })
    }

    /// Gives a client a floating pool (it may have several, e.g. per site or department), or a
    /// serial its one pool. `name` tells a client's pools apart.
    pub async fn create_pool(
        &self,
        actor: &CurrentUser,
        owner: PoolOwner,
        name: &str,
        lease_secs: Option<i64>,
    ) -> Result<Pool> {
        require_admin(actor)?;
        let name = field("name", name, 100, false)?;
        let (client_id, serial_id) = match owner {
            PoolOwner::Client(id) => (Some(id), None),
            PoolOwner::Serial(id) => (None, Some(id)),
        };
        let lease = lease_secs.unwrap_or(300);
        if !(30..=86_400).contains(&lease) {
            return Err(InputError::new(
                "lease_secs",
                "The lease must be from 30 seconds to 24 hours.",
            )
            .into());
        }
        let key = new_access_key();
        let stored = StoredKey::of(&key);
        let mut tx = self.db.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pools (client_id, serial_id, name, access_key, key_head, key_code_digest, \
             lease_secs, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(client_id)
        .bind(serial_id)
        .bind(&name)
        .bind(&stored.hash)
        .bind(&stored.head)
        .bind(&stored.code_digest)
        .bind(lease)
        .bind(self.clock.now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                Error::NotFound(if client_id.is_some() {
                    "The client"
                } else {
                    "The serial number"
                })
            }
            _ => Error::unique_as_conflict(e, "This serial number has a pool already."),
        })?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(AuditAction::PoolCreate, pool_subject(id, &name)).of_client(client_id),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(pool_id = id, by = actor.id, "pool created");
        // The one time the key is shown: only its digest is kept.
        Ok(Pool {
            access_key: key,
            ..self.pool(actor, id).await?
        })
    }

    /// Replaces a pool's key (its owner: an administrator, or a user of the pool's client). The
    /// old key keeps checking out for `grace_hours` (0 to 720), so workstations can be given
    /// the new one, then is refused with `/problems/pool-key-replaced`. Returns the pool with
    /// the new key, shown this once.
    pub async fn rotate_pool_key(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        grace_hours: i64,
    ) -> Result<Pool> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let now = self.clock.now();
        let until = protocol::floating::key_grace_until(now, grace_hours)?;
        let key = new_access_key();
        let stored = StoredKey::of(&key);
        // The key replaced joins the earlier ones, each with its own grace; the swap is one
        // change, guarded by the key it replaces (taking the row first), so of two owners
        // replacing the same key at once, one does and the other is told.
        let mut tx = self.db.pool().begin().await?;
        let (old_hash, old_code): (String, String) =
            sqlx::query_as("SELECT access_key, key_code_digest FROM pools WHERE id = $1")
                .bind(pool_id)
                .fetch_one(&mut *tx)
                .await?;
        let swapped = sqlx::query(
            "UPDATE pools SET key_rotated_at = $1, access_key = $2, key_head = $3, \
             key_code_digest = $4 WHERE id = $5 AND access_key = $6",
        )
        .bind(now)
        .bind(&stored.hash)
        .bind(&stored.head)
        .bind(&stored.code_digest)
        .bind(pool_id)
        .bind(&old_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let raced = || {
            Error::Conflict("The pool key was replaced at this very moment by someone else.".into())
        };
        if swapped == 0 {
            return Err(raced());
        }
        sqlx::query(
            "INSERT INTO pool_previous_keys (key_hash, pool_id, code_digest, replaced_at, \
             works_until) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&old_hash)
        .bind(pool_id)
        .bind(&old_code)
        .bind(now)
        .bind(until)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => raced(),
            _ => e.into(),
        })?;
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolKeyReplace).detail(format!(
                "The old key works until {}.",
                protocol::time::format_utc(until)
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(pool_id, by = actor.id, grace_hours, "pool key replaced");
        Ok(Pool {
            access_key: key,
            ..self.pool(actor, pool_id).await?
        })
    }

    /// Caps what one checkout may take from the pool's Token and Credit keys (the pool's owner;
    /// `None` lifts the cap): a leaked pool key cannot empty a Token key in one checkout.
    pub async fn set_checkout_cap(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        cap: Option<i64>,
    ) -> Result<Pool> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let cap = protocol::floating::checkout_cap(cap)?;
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE pools SET max_tokens_per_checkout = $1 WHERE id = $2")
            .bind(cap)
            .bind(pool_id)
            .execute(&mut *tx)
            .await?;
        let shown = |c: Option<i64>| c.map_or_else(|| "none".to_owned(), |c| c.to_string());
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolCheckoutCap)
                .changes(vec![FieldChange {
                    field: "tokens per checkout".into(),
                    before: shown(pool.max_tokens_per_checkout),
                    after: shown(cap),
                }]),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(pool_id, by = actor.id, ?cap, "checkout cap set");
        self.pool(actor, pool_id).await
    }

    /// Sets how the pool ends a seat whose application went silent (the pool's owner). Held
    /// seats already past their lease stay held; switching to `Lease` lets the reclaimer give
    /// them back at its next round.
    pub async fn set_silent_seats(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        mode: SilentSeats,
    ) -> Result<Pool> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE pools SET silent_seats = $1 WHERE id = $2")
            .bind(mode.code())
            .bind(pool_id)
            .execute(&mut *tx)
            .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolSilentSeats)
                .changes(vec![FieldChange {
                    field: "a silent seat is".into(),
                    before: pool.silent_seats().describe().into(),
                    after: mode.describe().into(),
                }]),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(
            pool_id,
            by = actor.id,
            mode = mode.code(),
            "silent seats set"
        );
        self.pool(actor, pool_id).await
    }

    /// Turns pool keys stored before they were kept as digests into digests; run at start.
    /// Each row changes in one statement, and only while it is still unconverted.
    pub async fn ensure_pool_keys_hashed(&self) -> Result<u64> {
        let plain: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, access_key FROM pools WHERE key_head = ''")
                .fetch_all(self.db.pool())
                .await?;
        let mut converted = 0;
        for (id, key) in plain {
            let stored = StoredKey::of(&key);
            converted += sqlx::query(
                "UPDATE pools SET access_key = $1, key_head = $2, key_code_digest = $3 \
                 WHERE id = $4 AND key_head = ''",
            )
            .bind(&stored.hash)
            .bind(&stored.head)
            .bind(&stored.code_digest)
            .bind(id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        }
        if converted > 0 {
            tracing::info!(pools = converted, "pool keys now kept as digests");
        }
        Ok(converted)
    }

    /// Deletes a pool with its keys, bundles and usage history; refused while seats are out.
    pub async fn delete_pool(&self, actor: &CurrentUser, pool_id: i64) -> Result<()> {
        require_admin(actor)?;
        let pool = self.pool_row(pool_id).await?;
        self.delete_pool_locked(pool_id)
            .await
            .map_err(busy_as_conflict)?;
        self.record_after(Who::User(actor), pool.entry(AuditAction::PoolDelete))
            .await;
        tracing::info!(pool_id, by = actor.id, "pool deleted");
        Ok(())
    }

    pub(super) async fn delete_pool_locked(&self, pool_id: i64) -> Result<()> {
        let mut tx = self.db.pool().begin().await?;
        // Every key locked first, as a checkout locks its key before it inserts its seat (the
        // same order, so the two wait for each other instead of deadlocking); then the pool
        // row itself, which on PostgreSQL holds off new seats and keys (their foreign keys
        // share-lock it) until the delete. SQLite's first write takes its one write lock.
        sqlx::query("UPDATE pool_keys SET in_use = in_use WHERE pool_id = $1")
            .bind(pool_id)
            .execute(&mut *tx)
            .await?;
        let lock_pool = match self.db.backend() {
            crate::Backend::Postgres => "SELECT id FROM pools WHERE id = $1 FOR UPDATE",
            crate::Backend::Sqlite => {
                "UPDATE pools SET lease_secs = lease_secs WHERE id = $1 RETURNING id"
            }
        };
        let exists: Option<i64> = sqlx::query_scalar(lock_pool)
            .bind(pool_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound("The pool"));
        }
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM seats WHERE pool_id = $1 AND released_at IS NULL",
        )
        .bind(pool_id)
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            let (seats, are, them) = if live == 1 {
                ("seat", "is", "it")
            } else {
                ("seats", "are", "them")
            };
            return Err(Error::Conflict(format!(
                "{live} {seats} of this pool {are} in use: disconnect {them} in Usage (or let \
                 {them} end) before deleting the pool."
            )));
        }
        sqlx::query("DELETE FROM pools WHERE id = $1")
            .bind(pool_id)
            .execute(&mut *tx)
            .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    pub async fn pool(&self, actor: &CurrentUser, pool_id: i64) -> Result<Pool> {
        let row = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &row)?;
        self.pool_view(row).await
    }

    /// Pools, oldest first: all for an administrator, the own client's for a client user.
    pub async fn list_pools(&self, actor: &CurrentUser, page: &Page) -> Result<Paged<Pool>> {
        let mut c = Conditions::default();
        if let Some(client) = crate::client_scope(actor)? {
            c.and("p.client_id = ?", [Bind::Int(client)]);
        }
        if let Some(after) = page.after::<i64>()? {
            c.and("p.id > ?", [Bind::Int(after)]);
        }
        let sql = c.page_sql(POOL_SELECT, "p.id", page.fetch());
        let rows: Vec<PoolRow> = c
            .bind(sqlx::query_as(&sql))
            .fetch_all(self.db.pool())
            .await?;
        page.finish(rows, |r| r.id)
            .try_map_each(|r| self.pool_view(r))
            .await
    }

    pub(super) async fn key_rows(&self, pool_id: i64) -> Result<Vec<KeyRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM pool_keys WHERE pool_id = $1 ORDER BY id"
        ))
        .bind(pool_id)
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn pool_keys(&self, actor: &CurrentUser, pool_id: i64) -> Result<Vec<PoolKey>> {
        self.pool(actor, pool_id).await?;
        Ok(self
            .key_rows(pool_id)
            .await?
            .iter()
            .map(KeyRow::view)
            .collect())
    }

    /// Adds a licence key to a pool.
    pub async fn add_pool_key(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        input: PoolKeyInput,
    ) -> Result<PoolKey> {
        require_admin(actor)?;
        let pool = self.pool_row(pool_id).await?;
        let k = validate_key(&input)?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pool_keys (pool_id, editor, feature, model, quantity, start_day, end_day, \
             group_index, max_release_number, max_release_day, commercial_type, customer_id, \
             pricing_structure, additional_info, file_index, generation_day, created_at, \
             casual_max_minutes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18) RETURNING id",
        )
        .bind(pool_id)
        .bind(&k.editor)
        .bind(&k.feature)
        .bind(k.model.as_str())
        .bind(k.quantity)
        .bind(k.start)
        .bind(k.end)
        .bind(k.group_index)
        .bind(k.max_release_number)
        .bind(k.max_release_day)
        .bind(k.commercial_type.as_str())
        .bind(&k.customer_id)
        .bind(&k.pricing_structure)
        .bind(&k.additional_info)
        .bind(k.file_index)
        .bind(k.generation_day.unwrap_or_else(|| day_of(now)))
        .bind(now)
        .bind(k.casual_max_minutes)
        .fetch_one(&mut *tx)
        .await?;
        let casual = k
            .casual_max_minutes
            .map(|m| format!(", casual: at most {m} mn per user per month"))
            .unwrap_or_default();
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolFeatureKeyAdd).detail(format!(
                "Key {id}: {} {} of {} ({}){casual}.",
                k.quantity,
                k.model.as_str(),
                k.feature,
                k.editor
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(pool_id, key_id = id, by = actor.id, "pool key added");
        self.pool_keys(actor, pool_id)
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or(Error::NotFound("The key"))
    }

    /// Removes a key no seat holds.
    pub async fn delete_pool_key(&self, actor: &CurrentUser, key_id: i64) -> Result<()> {
        require_admin(actor)?;
        let mut tx = self.db.pool().begin().await?;
        // The key and every other key of its feature in the pool locked first: no checkout
        // takes a seat of it between the check and the delete, and two removals of a bundled
        // feature's last keys cannot both see the other key still there.
        let locked = sqlx::query(
            "UPDATE pool_keys SET in_use = in_use WHERE (pool_id, feature) = \
             (SELECT pool_id, feature FROM pool_keys WHERE id = $1)",
        )
        .bind(key_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| busy_as_conflict(e.into()))?
        .rows_affected();
        if locked == 0 {
            return Err(Error::NotFound("The key"));
        }
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM seats WHERE key_id = $1 AND released_at IS NULL",
        )
        .bind(key_id)
        .fetch_one(&mut *tx)
        .await?;
        if live > 0 {
            return Err(Error::Conflict(
                "Seats of this key are in use: disconnect them (or let them end) first.".into(),
            ));
        }
        // The last key of a feature that a bundle names would leave every checkout of the
        // bundle refused.
        let bundle: Option<(String, String)> = sqlx::query_as(
            "SELECT b.feature, b.also_feature FROM pool_keys k \
             JOIN pool_bundles b ON b.pool_id = k.pool_id \
               AND (b.feature = k.feature OR b.also_feature = k.feature) \
             WHERE k.id = $1 AND NOT EXISTS (SELECT 1 FROM pool_keys o \
               WHERE o.pool_id = k.pool_id AND o.feature = k.feature AND o.id <> k.id) \
             ORDER BY b.feature, b.also_feature",
        )
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((feature, also)) = bundle {
            return Err(Error::Conflict(format!(
                "The bundle {feature} → {also} needs a key of this feature: remove the bundle \
                 first."
            )));
        }
        let (pool_id, feature, editor): (i64, String, String) = sqlx::query_as(
            "DELETE FROM pool_keys WHERE id = $1 RETURNING pool_id, feature, editor",
        )
        .bind(key_id)
        .fetch_one(&mut *tx)
        .await?;
        let (name, client_id): (String, Option<i64>) =
            sqlx::query_as("SELECT name, client_id FROM pools WHERE id = $1")
                .bind(pool_id)
                .fetch_one(&mut *tx)
                .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            Entry::new(
                AuditAction::PoolFeatureKeyDelete,
                pool_subject(pool_id, &name),
            )
            .of_client(client_id)
            .detail(format!("Key {key_id} of {feature} ({editor}) removed.")),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    /// Checking out `feature` in the pool also takes `also_feature`.
    pub async fn add_bundle(&self, actor: &CurrentUser, pool_id: i64, b: &Bundle) -> Result<()> {
        require_admin(actor)?;
        let pool = self.pool_row(pool_id).await?;
        let feature = field("feature", &b.feature, 100, true)?;
        let also = field("also_feature", &b.also_feature, 100, true)?;
        if feature == also {
            return Err(InputError::new("also_feature", "A feature cannot bundle itself.").into());
        }
        // Both features need a key here: a bundle taking a feature the pool lacks would refuse
        // every checkout of the first one. Their keys are locked for the check and the insert,
        // so a key removed at the same moment cannot slip between them.
        let mut tx = self.db.pool().begin().await?;
        for (name, f) in [("feature", &feature), ("also_feature", &also)] {
            let keys = sqlx::query(
                "UPDATE pool_keys SET in_use = in_use WHERE pool_id = $1 AND feature = $2",
            )
            .bind(pool_id)
            .bind(f)
            .execute(&mut *tx)
            .await
            .map_err(|e| busy_as_conflict(e.into()))?
            .rows_affected();
            if keys == 0 {
                return Err(InputError::new(
                    name,
                    format!("No key of this pool is for {f}: add a key of {f} first."),
                )
                .into());
            }
        }
        sqlx::query(
            "INSERT INTO pool_bundles (pool_id, feature, also_feature) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(pool_id)
        .bind(&feature)
        .bind(&also)
        .execute(&mut *tx)
        .await?;
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolBundleAdd)
                .detail(format!("Checking out {feature} also takes {also}.")),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    /// Removes a bundle; checkouts of `feature` no longer take `also_feature`.
    pub async fn remove_bundle(&self, actor: &CurrentUser, pool_id: i64, b: &Bundle) -> Result<()> {
        require_admin(actor)?;
        let pool = self.pool_row(pool_id).await?;
        let mut tx = self.db.pool().begin().await?;
        let removed = sqlx::query(
            "DELETE FROM pool_bundles WHERE pool_id = $1 AND feature = $2 AND also_feature = $3",
        )
        .bind(pool_id)
        .bind(b.feature.trim())
        .bind(b.also_feature.trim())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if removed == 0 {
            return Err(Error::NotFound("The bundle"));
        }
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolBundleRemove).detail(format!(
                "Checking out {} no longer takes {}.",
                b.feature.trim(),
                b.also_feature.trim()
            )),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(pool_id, by = actor.id, "bundle removed");
        Ok(())
    }

    pub async fn pool_bundles(&self, actor: &CurrentUser, pool_id: i64) -> Result<Vec<Bundle>> {
        self.pool(actor, pool_id).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT feature, also_feature FROM pool_bundles WHERE pool_id = $1 \
             ORDER BY feature, also_feature",
        )
        .bind(pool_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(feature, also_feature)| Bundle {
                feature,
                also_feature,
            })
            .collect())
    }

    /// Whether `actor` is the administrator or a user of the pool's client (for the portal).
    pub async fn may_manage_pool(&self, actor: &CurrentUser, pool_id: i64) -> Result<bool> {
        let pool = self.pool_row(pool_id).await?;
        Ok(match actor.role {
            Role::Admin => true,
            Role::Client => self.require_pool_access(actor, &pool).is_ok(),
        })
    }
}
