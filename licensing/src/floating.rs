//! The floating licence server: pools of licence keys, the seat protocol (checkout → heartbeat →
//! release, with leases reclaimed when an application dies), the usage monitor and the
//! explanation of a key choice.
//!
//! In use never exceeds count: a key's `in_use` changes only by conditional updates
//! (`… SET in_use = in_use + n WHERE id = $1 AND in_use + n <= quantity`), which PostgreSQL
//! re-checks on the locked row and SQLite runs one writer at a time, and a CHECK constraint
//! refuses anything else. Releases mark the seat released first, conditionally, so a seat is
//! given back once however many processes race to release or reclaim it.

use crate::selection::{self, Ask, CommercialType, Key, Model, Verdict};
use crate::serials::check_serial;
use crate::{require_admin, Error, Licentia, Refusal, Result};
use protocol::account::{CurrentUser, Role};
use protocol::floating::PricingStructure;
use protocol::floating::{
    Bundle, FeatureUsage, KeyVerdict, Pool, PoolKey, PoolKeyInput, PoolOwner, SeatDetail,
};
use protocol::input::InputError;
use protocol::seats::{Beat, CheckoutRequest, Grant, PoolRef, ReleaseReason, SeatTerms};
use protocol::time::{day_of, format_date, parse_date};

#[derive(sqlx::FromRow, Clone)]
struct PoolRow {
    id: i64,
    name: String,
    client_id: Option<i64>,
    serial_id: Option<i64>,
    access_key: String,
    lease_secs: i64,
    created_at: i64,
    owner: String,
}

const POOL_SELECT: &str =
    "SELECT p.id, p.name, p.client_id, p.serial_id, p.access_key, p.lease_secs, \
     p.created_at, COALESCE(c.name, s.serial) AS owner FROM pools p \
     LEFT JOIN clients c ON c.id = p.client_id LEFT JOIN serials s ON s.id = p.serial_id";

#[derive(sqlx::FromRow, Clone)]
struct KeyRow {
    id: i64,
    pool_id: i64,
    editor: String,
    feature: String,
    model: String,
    quantity: i64,
    in_use: i64,
    start_day: Option<i64>,
    end_day: Option<i64>,
    group_index: i64,
    max_release_number: i64,
    max_release_day: Option<i64>,
    commercial_type: String,
    customer_id: String,
    pricing_structure: String,
    additional_info: String,
    file_index: i64,
    generation_day: i64,
    created_at: i64,
}

const KEY_COLUMNS: &str = "id, pool_id, editor, feature, model, quantity, in_use, start_day, \
     end_day, group_index, max_release_number, max_release_day, commercial_type, customer_id, \
     pricing_structure, additional_info, file_index, generation_day, created_at";

impl KeyRow {
    fn model(&self) -> Model {
        Model::parse(&self.model).unwrap_or(Model::ConcurrentUser)
    }

    fn for_selection(&self) -> Key {
        Key {
            id: self.id,
            editor: self.editor.clone(),
            feature: self.feature.clone(),
            model: self.model(),
            quantity: self.quantity,
            in_use: self.in_use,
            start: self.start_day,
            end: self.end_day,
            group_index: self.group_index,
            max_release_number: self.max_release_number,
            max_release_date: self.max_release_day,
            commercial_type: CommercialType::parse(&self.commercial_type)
                .unwrap_or(CommercialType::Std),
            customer_id: self.customer_id.clone(),
            pricing_structure: self.pricing_structure.clone(),
            additional_info: self.additional_info.clone(),
            file_index: self.file_index,
            generation_date: self.generation_day,
        }
    }

    fn view(&self) -> PoolKey {
        PoolKey {
            id: self.id,
            pool_id: self.pool_id,
            fields: PoolKeyInput {
                editor: self.editor.clone(),
                feature: self.feature.clone(),
                model: self.model.clone(),
                quantity: self.quantity,
                start_date: self.start_day.map(format_date),
                end_date: self.end_day.map(format_date),
                group_index: self.group_index,
                max_release_number: self.max_release_number,
                max_release_date: self.max_release_day.map(format_date),
                commercial_type: self.commercial_type.clone(),
                customer_id: self.customer_id.clone(),
                pricing_structure: self.pricing_structure.clone(),
                additional_info: self.additional_info.clone(),
                file_index: self.file_index,
                generation_date: Some(format_date(self.generation_day)),
            },
            in_use: self.in_use,
            created_at: self.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SeatRow {
    id: i64,
    pool_id: i64,
    key_id: i64,
    editor: String,
    feature: String,
    client_release_number: i64,
    client_release_day: Option<i64>,
    amount: i64,
    released_at: Option<i64>,
    released_by: Option<String>,
    ask_model: Option<String>,
    ask_commercial_type: Option<String>,
    ask_customer_id: Option<String>,
    ask_pricing_structure: Option<String>,
}

const SEAT_COLUMNS: &str = "id, pool_id, key_id, editor, feature, client_release_number, \
     client_release_day, amount, released_at, released_by, ask_model, ask_commercial_type, \
     ask_customer_id, ask_pricing_structure";

/// A printable text field of a checkout: trimmed, 1..=max characters (or empty if allowed).
fn field(name: &'static str, raw: &str, max: usize, required: bool) -> Result<String> {
    let min = usize::from(required);
    Ok(protocol::input::text_line(
        name,
        raw,
        min..=max,
        &format!("{name} must be {min} to {max} printable characters."),
    )?)
}

fn optional_date(name: &'static str, raw: Option<&str>) -> Result<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(d) => parse_date(d).map(Some).ok_or_else(|| {
            InputError::new(name, format!("{name} must be a date such as 2026-11-25.")).into()
        }),
    }
}

/// The key fields as entered, checked.
struct ValidKey {
    editor: String,
    feature: String,
    model: Model,
    quantity: i64,
    start: Option<i64>,
    end: Option<i64>,
    group_index: i64,
    max_release_number: i64,
    max_release_day: Option<i64>,
    commercial_type: CommercialType,
    customer_id: String,
    pricing_structure: String,
    additional_info: String,
    file_index: i64,
    generation_day: Option<i64>,
}

fn model(raw: &str) -> Result<Model> {
    Model::parse(raw).ok_or_else(|| {
        InputError::new("model", format!("The model is {}.", Model::listed())).into()
    })
}

fn commercial_type(raw: &str) -> Result<CommercialType> {
    CommercialType::parse(raw).ok_or_else(|| {
        InputError::new(
            "commercial_type",
            format!("The commercial type is {}.", CommercialType::listed()),
        )
        .into()
    })
}

fn validate_key(k: &PoolKeyInput) -> Result<ValidKey> {
    let model = model(&k.model)?;
    let commercial_type = commercial_type(&k.commercial_type)?;
    let pricing = field("pricing_structure", &k.pricing_structure, 10, false)?;
    let pricing = match pricing.as_str() {
        "" => String::new(),
        p => PricingStructure::parse(p)
            .ok_or_else(|| {
                InputError::new(
                    "pricing_structure",
                    format!(
                        "The pricing structure is {} or empty.",
                        PricingStructure::listed()
                    ),
                )
            })?
            .as_str()
            .to_owned(),
    };
    if !(1..=1_000_000).contains(&k.quantity) {
        return Err(InputError::new("quantity", "The quantity must be from 1 to 1000000.").into());
    }
    let bounded = |name: &'static str, v: i64| {
        if (0..=1_000_000_000).contains(&v) {
            Ok(v)
        } else {
            Err(InputError::new(
                name,
                format!("{name} must be from 0 to 1000000000."),
            ))
        }
    };
    let start = optional_date("start_date", k.start_date.as_deref())?;
    let end = optional_date("end_date", k.end_date.as_deref())?;
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(
                InputError::new("end_date", "The end date is before the start date.").into(),
            );
        }
    }
    Ok(ValidKey {
        editor: field("editor", &k.editor, 100, true)?,
        feature: field("feature", &k.feature, 100, true)?,
        model,
        quantity: k.quantity,
        start,
        end,
        group_index: bounded("group_index", k.group_index)?,
        max_release_number: bounded("max_release_number", k.max_release_number)?,
        max_release_day: optional_date("max_release_date", k.max_release_date.as_deref())?,
        commercial_type,
        customer_id: field("customer_id", &k.customer_id, 100, false)?,
        pricing_structure: pricing,
        additional_info: field("additional_info", &k.additional_info, 500, false)?,
        file_index: bounded("file_index", k.file_index)?,
        generation_day: optional_date("generation_date", k.generation_date.as_deref())?,
    })
}

/// What the selection is asked, from a checkout's terms (checked).
fn ask_of(req: &SeatTerms) -> Result<Ask> {
    let editor = match req.editor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => Some(field("editor", e, 100, true)?),
    };
    let needed = req.tokens.unwrap_or(1);
    if !(1..=1_000_000).contains(&needed) {
        return Err(InputError::new("tokens", "Ask for 1 to 1000000 tokens.").into());
    }
    let commercial_type = match req.commercial_type.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(commercial_type(c)?),
    };
    let model = match req.model.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(m) => Some(model(m)?),
    };
    let text = |v: &Option<String>| v.clone().filter(|c| !c.trim().is_empty());
    Ok(Ask {
        editor,
        feature: field("feature", &req.feature, 100, true)?,
        model,
        release_number: req.release_number,
        release_date: optional_date("release_date", req.release_date.as_deref())?,
        commercial_type,
        customer_id: text(&req.customer_id),
        pricing_structure: text(&req.pricing_structure),
        needed,
    })
}

fn new_access_key() -> String {
    format!("POOL-{}", crate::catalog::new_licence_key())
}

fn lease_token() -> String {
    format!("seat_{}", crate::token::generate())
}

impl Licentia {
    // ---- pools and keys (administrators; a client user reads its own) ----

    async fn pool_row(&self, pool_id: i64) -> Result<PoolRow> {
        sqlx::query_as(&format!("{POOL_SELECT} WHERE p.id = $1"))
            .bind(pool_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The pool"))
    }

    fn require_pool_access(&self, actor: &CurrentUser, pool: &PoolRow) -> Result<()> {
        match pool.client_id {
            Some(c) => self.require_client_access(actor, c),
            None => require_admin(actor),
        }
    }

    async fn pool_view(&self, row: PoolRow) -> Result<Pool> {
        let (keys, in_use): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(in_use) AS BIGINT) FROM pool_keys WHERE pool_id = $1",
        )
        .bind(row.id)
        .fetch_one(self.db.pool())
        .await?;
        Ok(Pool {
            id: row.id,
            name: row.name,
            client_id: row.client_id,
            serial_id: row.serial_id,
            owner: row.owner,
            access_key: row.access_key,
            lease_secs: row.lease_secs,
            keys,
            in_use: in_use.unwrap_or(0),
            created_at: row.created_at,
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pools (client_id, serial_id, name, access_key, lease_secs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(client_id)
        .bind(serial_id)
        .bind(&name)
        .bind(new_access_key())
        .bind(lease)
        .bind(self.clock.now())
        .fetch_one(self.db.pool())
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
        tracing::info!(pool_id = id, by = actor.id, "pool created");
        self.pool(actor, id).await
    }

    /// Deletes a pool with its keys, bundles and usage history; refused while seats are out.
    pub async fn delete_pool(&self, actor: &CurrentUser, pool_id: i64) -> Result<()> {
        require_admin(actor)?;
        self.delete_pool_locked(pool_id)
            .await
            .map_err(busy_as_conflict)?;
        tracing::info!(pool_id, by = actor.id, "pool deleted");
        Ok(())
    }

    async fn delete_pool_locked(&self, pool_id: i64) -> Result<()> {
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
        tx.commit().await?;
        Ok(())
    }

    pub async fn pool(&self, actor: &CurrentUser, pool_id: i64) -> Result<Pool> {
        let row = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &row)?;
        self.pool_view(row).await
    }

    /// Pools: all for an administrator, the own client's for a client user.
    pub async fn list_pools(&self, actor: &CurrentUser) -> Result<Vec<Pool>> {
        let scope = crate::client_scope(actor)?;
        let rows: Vec<PoolRow> = sqlx::query_as(&format!(
            "{POOL_SELECT} WHERE ($1 IS NULL OR p.client_id = $1) ORDER BY p.id"
        ))
        .bind(scope)
        .fetch_all(self.db.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.pool_view(r).await?);
        }
        Ok(out)
    }

    async fn key_rows(&self, pool_id: i64) -> Result<Vec<KeyRow>> {
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
        self.pool_row(pool_id).await?;
        let k = validate_key(&input)?;
        let now = self.clock.now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pool_keys (pool_id, editor, feature, model, quantity, start_day, end_day, \
             group_index, max_release_number, max_release_day, commercial_type, customer_id, \
             pricing_structure, additional_info, file_index, generation_day, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING id",
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
        .fetch_one(self.db.pool())
        .await?;
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
        sqlx::query("DELETE FROM pool_keys WHERE id = $1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checking out `feature` in the pool also takes `also_feature`.
    pub async fn add_bundle(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        feature: &str,
        also_feature: &str,
    ) -> Result<()> {
        require_admin(actor)?;
        self.pool_row(pool_id).await?;
        let feature = field("feature", feature, 100, true)?;
        let also = field("also_feature", also_feature, 100, true)?;
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
        tx.commit().await?;
        Ok(())
    }

    /// Removes a bundle; checkouts of `feature` no longer take `also_feature`.
    pub async fn remove_bundle(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        feature: &str,
        also_feature: &str,
    ) -> Result<()> {
        require_admin(actor)?;
        self.pool_row(pool_id).await?;
        let removed = sqlx::query(
            "DELETE FROM pool_bundles WHERE pool_id = $1 AND feature = $2 AND also_feature = $3",
        )
        .bind(pool_id)
        .bind(feature.trim())
        .bind(also_feature.trim())
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if removed == 0 {
            return Err(Error::NotFound("The bundle"));
        }
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

    // ---- the seat protocol ----

    async fn pool_for(&self, access: &PoolRef) -> Result<PoolRow> {
        match access {
            PoolRef::Key(key) => {
                let key = key.trim().to_uppercase();
                sqlx::query_as(&format!("{POOL_SELECT} WHERE p.access_key = $1"))
                    .bind(&key)
                    .fetch_optional(self.db.pool())
                    .await?
                    .ok_or_else(|| {
                        InputError::new("pool_key", "No pool has this pool key: check it.").into()
                    })
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
                if !s.code.eq_ignore_ascii_case(product.trim()) {
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
        let pool = self.pool_for(&req.pool()?).await?;
        let ask = ask_of(&req.terms)?;
        let feature = ask.feature.clone();
        let user = field("user", &req.who.user, 255, true)?;
        let host = field("host", &req.who.host, 255, true)?;
        let process = field("process", &req.who.process, 255, true)?;
        let session = field("session", &req.who.session, 255, false)?;
        let release_day = ask.release_date;
        let now = self.clock.now();

        // The same session again (an application restarted without releasing): its seat back.
        let existing: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, key_id FROM seats WHERE pool_id = $1 AND feature = $2 AND user_name = $3 \
             AND host = $4 AND session = $5 AND released_at IS NULL AND bundle_of IS NULL",
        )
        .bind(pool.id)
        .bind(&feature)
        .bind(&user)
        .bind(&host)
        .bind(&session)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some((seat_id, _)) = existing {
            // (None: it was released a moment ago; a new seat is checked out below.)
            if let Some(grant) = self.hand_back(&pool, seat_id, &process, now).await? {
                return Ok(grant);
            }
        }

        let keys = self.key_rows(pool.id).await?;
        let selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        let today = day_of(now);
        let mut ranked: Vec<(usize, &KeyRow)> = selection::explain(&selectable, &ask, today)
            .into_iter()
            .filter_map(|(id, v)| match v {
                Verdict::Ranked(r) => keys.iter().find(|k| k.id == id).map(|k| (r, k)),
                Verdict::Filtered(_) => None,
            })
            .collect();
        ranked.sort_by_key(|(r, _)| *r);

        // A named user who holds a NamedUser key already takes no further seat of it.
        let held_named: Option<i64> = sqlx::query_scalar(
            "SELECT s.key_id FROM seats s JOIN pool_keys k ON k.id = s.key_id \
             WHERE s.pool_id = $1 AND s.feature = $2 AND s.user_name = $3 \
             AND s.released_at IS NULL AND s.amount > 0 AND k.model = 'NamedUser' LIMIT 1",
        )
        .bind(pool.id)
        .bind(&feature)
        .bind(&user)
        .fetch_optional(self.db.pool())
        .await?;

        let seat = SeatAsk {
            pool_id: pool.id,
            user: &user,
            host: &host,
            process: &process,
            session: &session,
            release_number: req.terms.release_number,
            release_day,
            now,
            lease_secs: pool.lease_secs,
            ask: &ask,
        };
        let bundles: Vec<String> = sqlx::query_scalar(
            "SELECT also_feature FROM pool_bundles WHERE pool_id = $1 AND feature = $2 \
             ORDER BY also_feature",
        )
        .bind(pool.id)
        .bind(&feature)
        .fetch_all(self.db.pool())
        .await?;
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
                Taken::Granted(grant) => {
                    self.record_peak(pool.id, &key.editor, &key.feature, now)
                        .await?;
                    return Ok(grant);
                }
                Taken::KeyFull => continue,
                Taken::BundleMissing(also) => {
                    self.record_refusal(pool.id, key.editor.as_str(), &also, now)
                        .await?;
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
        if in_use >= count {
            let all = if count == 1 {
                format!("The 1 seat of feature {feature} is in use.")
            } else {
                format!("All {count} seats of feature {feature} are in use.")
            };
            // No usable seat at all (every key expired, say) is not a wait.
            let kind = if count == 0 {
                Refusal::NoMatchingKey
            } else {
                Refusal::SeatsTaken
            };
            return Err(Error::Refused(
                kind,
                format!(
                    "{all} Try again when someone closes the application, or ask your \
                     administrator for more."
                ),
            ));
        }
        Err(Error::Refused(
            Refusal::NoMatchingKey,
            format!(
                "No licence key of feature {feature} fits this request (release, dates or \
                 terms); {count} seat{} exist, {in_use} in use. Your administrator can explain \
                 the choice.",
                if count == 1 { "" } else { "s" }
            ),
        ))
    }

    /// Takes `amount` of `key` (0: a named user's further session) and the seats it bundles,
    /// in one transaction.
    async fn take(
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
            let mut got = false;
            for (_, id) in order {
                let Some(k) = keys.iter().find(|k| k.id == id) else {
                    continue;
                };
                if increment(&mut tx, k.id, 1).await? {
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
        tx.commit().await?;
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
    async fn hand_back(
        &self,
        pool: &PoolRow,
        seat_id: i64,
        process: &str,
        now: i64,
    ) -> Result<Option<Grant>> {
        let token = lease_token();
        let kept = sqlx::query(
            "UPDATE seats SET lease_token_hash = $1, process = $2, last_heartbeat_at = $3, \
             lease_expires_at = $4 WHERE id = $5 AND released_at IS NULL",
        )
        .bind(crate::token::digest(&token))
        .bind(process)
        .bind(now)
        .bind(now + pool.lease_secs)
        .bind(seat_id)
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

    async fn seat_by_token(&self, seat_id: i64, token: &str) -> Result<SeatRow> {
        sqlx::query_as(&format!(
            "SELECT {SEAT_COLUMNS} FROM seats WHERE id = $1 AND lease_token_hash = $2"
        ))
        .bind(seat_id)
        .bind(crate::token::digest(token.trim()))
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::NotFound("A seat with this lease token"))
    }

    /// Keeps a seat: a fresh lease. If its key expired or was superseded, the seat moves to the
    /// key the selection picks now; if none fits, the seat is lost and the answer says why.
    pub async fn heartbeat(&self, seat_id: i64, token: &str) -> Result<Beat> {
        let seat = self.seat_by_token(seat_id, token).await?;
        if seat.released_at.is_some() {
            return Err(lost(&seat));
        }
        let pool = self.pool_row(seat.pool_id).await?;
        let now = self.clock.now();
        let today = day_of(now);
        let keys = self.key_rows(seat.pool_id).await?;
        let mut selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        // Judge the held key as if this seat were not on it.
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
        let mut key_id = seat.key_id;
        let mut moved = false;
        if !still_good {
            let reason = match held {
                Some((_, Verdict::Filtered(rule))) => rule.to_string(),
                _ => "its licence key was removed".to_owned(),
            };
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
                    self.release_seat(seat.id, &ReleaseReason::Lost(reason.clone()))
                        .await?;
                    return Err(Error::Gone(format!(
                        "Your seat of {} was lost: {reason}, and no other licence key is free.",
                        seat.feature
                    )));
                }
            }
        }
        let kept = sqlx::query(
            "UPDATE seats SET last_heartbeat_at = $1, lease_expires_at = $2 \
             WHERE id = $3 AND released_at IS NULL",
        )
        .bind(now)
        .bind(now + pool.lease_secs)
        .bind(seat.id)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if kept == 0 {
            // Released between the read and the write (disconnected, or its lease reclaimed).
            let seat = self.seat_by_token(seat_id, token).await?;
            return Err(lost(&seat));
        }
        Ok(Beat {
            lease_expires_at: now + pool.lease_secs,
            key_id,
            moved,
        })
    }

    /// Moves a live seat to `to_key` if that key has room, in one transaction.
    async fn move_seat(&self, seat: &SeatRow, to_key: i64) -> Result<bool> {
        // A named user's riding session pays for itself on the new key.
        let amount = seat.amount.max(1);
        let mut tx = self.db.pool().begin().await?;
        if !increment(&mut tx, to_key, amount).await? {
            return Ok(false);
        }
        let moved = sqlx::query(
            "UPDATE seats SET key_id = $1, amount = $2 \
             WHERE id = $3 AND key_id = $4 AND released_at IS NULL",
        )
        .bind(to_key)
        .bind(amount)
        .bind(seat.id)
        .bind(seat.key_id)
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
        tx.commit().await?;
        Ok(true)
    }

    /// The application gives its seat (and the seats bundled with it) back.
    pub async fn release(&self, seat_id: i64, token: &str) -> Result<()> {
        let seat = self.seat_by_token(seat_id, token).await?;
        if seat.released_at.is_some() {
            return Ok(());
        }
        self.release_seat(seat.id, &ReleaseReason::Application)
            .await?;
        Ok(())
    }

    /// Releases a seat once, whoever asks: marks it released (conditionally, so a race between
    /// a release, a disconnect and the lease reclaimer gives the seat back once), then returns
    /// its quantity to its key (credits are consumed, not returned). Returns whether this call
    /// released it.
    async fn release_seat(&self, seat_id: i64, why: &ReleaseReason) -> Result<bool> {
        self.release_seat_if(seat_id, why, None).await
    }

    /// `release_seat`, only if the seat's lease ended before `expired_before` when given (so a
    /// heartbeat that arrived meanwhile keeps it).
    async fn release_seat_if(
        &self,
        seat_id: i64,
        why: &ReleaseReason,
        expired_before: Option<i64>,
    ) -> Result<bool> {
        type Released = (i64, i64, i64, String, String);
        let by = why.stored();
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let main: Option<Released> = sqlx::query_as(
            "UPDATE seats SET released_at = $1, released_by = $2 \
             WHERE id = $3 AND released_at IS NULL AND ($4 IS NULL OR lease_expires_at < $4) \
             RETURNING id, key_id, amount, user_name, \
               (SELECT k.model FROM pool_keys k WHERE k.id = seats.key_id)",
        )
        .bind(now)
        .bind(&by)
        .bind(seat_id)
        .bind(expired_before)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(main) = main else {
            return Ok(false);
        };
        // The seats it bundles go with it.
        let mut released: Vec<Released> = sqlx::query_as(
            "UPDATE seats SET released_at = $1, released_by = $2 \
             WHERE bundle_of = $3 AND released_at IS NULL \
             RETURNING id, key_id, amount, user_name, \
               (SELECT k.model FROM pool_keys k WHERE k.id = seats.key_id)",
        )
        .bind(now)
        .bind(&by)
        .bind(seat_id)
        .fetch_all(&mut *tx)
        .await?;
        released.push(main);
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
        tx.commit().await?;
        tracing::info!(seat_id, by, "seat released");
        Ok(true)
    }

    /// Frees the seats whose lease ran out (their applications died or lost the network).
    /// Safe to run in several server processes at once.
    pub async fn reclaim_expired_seats(&self) -> Result<u64> {
        let now = self.clock.now();
        let expired: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM seats WHERE released_at IS NULL AND bundle_of IS NULL \
             AND lease_expires_at < $1 ORDER BY id LIMIT 1000",
        )
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        let mut n = 0;
        for id in expired {
            if self
                .release_seat_if(id, &ReleaseReason::LeaseExpired, Some(now))
                .await?
            {
                n += 1;
            }
        }
        if n > 0 {
            tracing::info!(seats = n, "expired leases reclaimed");
        }
        Ok(n)
    }

    /// An administrator (or the pool's client user) frees a stuck seat; the application learns
    /// at its next heartbeat.
    pub async fn disconnect_seat(&self, actor: &CurrentUser, seat_id: i64) -> Result<()> {
        let pool_id: i64 = sqlx::query_scalar("SELECT pool_id FROM seats WHERE id = $1")
            .bind(seat_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::NotFound("The seat"))?;
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let by = ReleaseReason::Disconnected {
            role: actor.role,
            user_id: actor.id,
        };
        if !self.release_seat(seat_id, &by).await? {
            return Err(Error::Gone("This seat was already released.".into()));
        }
        Ok(())
    }

    async fn record_refusal(
        &self,
        pool_id: i64,
        editor: &str,
        feature: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO usage_hourly (pool_id, editor, feature, hour, refusals) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT (pool_id, editor, feature, hour) \
             DO UPDATE SET refusals = usage_hourly.refusals + 1",
        )
        .bind(pool_id)
        .bind(editor)
        .bind(feature)
        .bind(now / 3600)
        .execute(self.db.pool())
        .await
        .map(drop)
        .or_else(pool_deleted_meanwhile)
    }

    async fn record_peak(&self, pool_id: i64, editor: &str, feature: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO usage_hourly (pool_id, editor, feature, hour, peak_in_use) \
             SELECT $1, $2, $3, $4, CAST(COALESCE(SUM(in_use), 0) AS BIGINT) FROM pool_keys \
             WHERE pool_id = $1 AND editor = $2 AND feature = $3 \
             ON CONFLICT (pool_id, editor, feature, hour) DO UPDATE SET peak_in_use = \
             CASE WHEN excluded.peak_in_use > usage_hourly.peak_in_use \
                  THEN excluded.peak_in_use ELSE usage_hourly.peak_in_use END",
        )
        .bind(pool_id)
        .bind(editor)
        .bind(feature)
        .bind(now / 3600)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Refusals and peak use per hour of a pool's features, oldest first: (editor, feature,
    /// hour as Unix seconds, refusals, peak).
    pub async fn usage_history(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
    ) -> Result<Vec<(String, String, i64, i64, i64)>> {
        self.pool(actor, pool_id).await?;
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT editor, feature, hour, refusals, peak_in_use FROM usage_hourly \
             WHERE pool_id = $1 ORDER BY hour, editor, feature",
        )
        .bind(pool_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(e, f, h, r, p)| (e, f, h * 3600, r, p))
            .collect())
    }

    // ---- monitoring and explanation ----

    /// *Usage Per Feature*: every pool's for an administrator, the own pool's for a client user.
    pub async fn usage_per_feature(&self, actor: &CurrentUser) -> Result<Vec<FeatureUsage>> {
        let scope = crate::client_scope(actor)?;
        let today = day_of(self.clock.now());
        let rows: Vec<(i64, String, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT p.id, COALESCE(c.name, s.serial), k.editor, k.feature, k.commercial_type, \
             CAST(SUM(k.in_use) AS BIGINT), \
             CAST(SUM(CASE WHEN (k.start_day IS NULL OR k.start_day <= $2) \
                 AND (k.end_day IS NULL OR k.end_day >= $2) \
                 AND NOT EXISTS (SELECT 1 FROM pool_keys h WHERE h.pool_id = k.pool_id \
                     AND h.editor = k.editor AND h.feature = k.feature \
                     AND h.group_index > k.group_index \
                     AND (h.start_day IS NULL OR h.start_day <= $2) \
                     AND (h.end_day IS NULL OR h.end_day >= $2)) \
                 THEN k.quantity ELSE 0 END) AS BIGINT) \
             FROM pool_keys k JOIN pools p ON p.id = k.pool_id \
             LEFT JOIN clients c ON c.id = p.client_id LEFT JOIN serials s ON s.id = p.serial_id \
             WHERE ($1 IS NULL OR p.client_id = $1) \
             GROUP BY p.id, COALESCE(c.name, s.serial), k.editor, k.feature, k.commercial_type \
             ORDER BY k.editor, k.feature, k.commercial_type, p.id",
        )
        .bind(scope)
        .bind(today)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(pool_id, owner, editor, feature, ct, in_use, count)| FeatureUsage {
                    pool_id,
                    owner,
                    editor,
                    feature,
                    commercial_type: ct,
                    in_use,
                    count,
                },
            )
            .collect())
    }

    /// *Detailed usage* of one feature of a pool: every live seat with its key's fields.
    pub async fn detailed_usage(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        editor: &str,
        feature: &str,
    ) -> Result<Vec<SeatDetail>> {
        self.pool(actor, pool_id).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            key_id: i64,
            model: String,
            editor: String,
            feature: String,
            user_name: String,
            host: String,
            process: String,
            session: String,
            amount: i64,
            granted_since: i64,
            last_heartbeat_at: i64,
            granted_at: i64,
            lease_expires_at: i64,
            max_release_number: i64,
            max_release_day: Option<i64>,
            end_day: Option<i64>,
            customer_id: String,
            pricing_structure: String,
            commercial_type: String,
            client_release_number: i64,
            bundled_with: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT s.id, s.key_id, k.model, s.editor, s.feature, s.user_name, s.host, s.process, \
             s.session, s.amount, \
             (SELECT MIN(o.granted_at) FROM seats o WHERE o.pool_id = s.pool_id \
                AND o.feature = s.feature AND o.user_name = s.user_name AND o.host = s.host \
                AND o.session = s.session) AS granted_since, \
             s.last_heartbeat_at, s.granted_at, s.lease_expires_at, k.max_release_number, \
             k.max_release_day, k.end_day, k.customer_id, k.pricing_structure, \
             k.commercial_type, s.client_release_number, \
             (SELECT b.feature FROM seats b WHERE b.id = s.bundle_of) AS bundled_with \
             FROM seats s JOIN pool_keys k ON k.id = s.key_id \
             WHERE s.pool_id = $1 AND s.editor = $2 AND s.feature = $3 \
             AND s.released_at IS NULL ORDER BY s.granted_at",
        )
        .bind(pool_id)
        .bind(editor)
        .bind(feature)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SeatDetail {
                id: r.id,
                pool_id,
                key_id: r.key_id,
                server: self.issuer.to_string(),
                licence_type: r.model,
                editor: r.editor,
                feature: r.feature,
                user: r.user_name,
                host: r.host,
                process: r.process,
                session: r.session,
                amount: r.amount,
                granted_since: r.granted_since,
                last_used_at: r.last_heartbeat_at,
                granted_at: r.granted_at,
                lease_expires_at: r.lease_expires_at,
                max_release_number: r.max_release_number,
                max_release_date: r.max_release_day.map(format_date),
                expiration_date: r.end_day.map(format_date),
                customer_id: r.customer_id,
                pricing_structure: r.pricing_structure,
                commercial_type: r.commercial_type,
                process_release: r.client_release_number,
                bundled_with: r.bundled_with,
            })
            .collect())
    }

    /// For a hypothetical checkout: every key of the pool with the filter that removed it or its
    /// rank (1 would be granted).
    pub async fn explain_checkout(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        terms: &SeatTerms,
    ) -> Result<Vec<KeyVerdict>> {
        self.pool(actor, pool_id).await?;
        let keys = self.key_rows(pool_id).await?;
        let ask = ask_of(terms)?;
        let selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        let today = day_of(self.clock.now());
        Ok(selection::explain(&selectable, &ask, today)
            .into_iter()
            .filter_map(|(id, v)| {
                let key = keys.iter().find(|k| k.id == id)?.view();
                Some(match v {
                    Verdict::Ranked(r) => KeyVerdict {
                        key,
                        rank: i64::try_from(r).ok(),
                        filtered_by: None,
                    },
                    Verdict::Filtered(rule) => KeyVerdict {
                        key,
                        rank: None,
                        filtered_by: Some(rule.to_string()),
                    },
                })
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

fn lost(seat: &SeatRow) -> Error {
    let why = seat
        .released_by
        .as_deref()
        .and_then(ReleaseReason::from_stored)
        .unwrap_or(ReleaseReason::Application)
        .why();
    Error::Gone(format!(
        "Your seat of {} is gone: {why}. Check out again.",
        seat.feature
    ))
}

struct SeatAsk<'a> {
    pool_id: i64,
    user: &'a str,
    host: &'a str,
    process: &'a str,
    session: &'a str,
    release_number: i64,
    release_day: Option<i64>,
    now: i64,
    lease_secs: i64,
    ask: &'a Ask,
}

enum Taken {
    Granted(Grant),
    KeyFull,
    BundleMissing(String),
}

/// Takes `amount` of a key if it has room; `false` if not. Never lets in use exceed count.
async fn increment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key_id: i64,
    amount: i64,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE pool_keys SET in_use = in_use + $1 WHERE id = $2 AND in_use + $1 <= quantity",
    )
    .bind(amount)
    .bind(key_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// PostgreSQL ends one of two transactions that wait on each other (or cannot be serialised):
/// the caller is told to try again rather than shown a server error.
/// A usage figure for a pool deleted a moment ago has nowhere to go, and is not the caller's
/// problem: the checkout's own answer stands.
fn pool_deleted_meanwhile(e: sqlx::Error) -> Result<()> {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Ok(()),
        _ => Err(e.into()),
    }
}

fn busy_as_conflict(e: Error) -> Error {
    match &e {
        Error::Database(sqlx::Error::Database(d))
            if matches!(d.code().as_deref(), Some("40P01" | "40001")) =>
        {
            Error::Conflict("The pool is busy this very moment: try again.".into())
        }
        _ => e,
    }
}

/// Takes the key's row lock (PostgreSQL) or the write lock (SQLite) for the rest of the
/// transaction, so decisions about its seats are made one at a time.
async fn lock_key(tx: &mut sqlx::Transaction<'_, sqlx::Any>, key_id: i64) -> Result<()> {
    sqlx::query("UPDATE pool_keys SET in_use = in_use WHERE id = $1")
        .bind(key_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn give_back(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key_id: i64,
    amount: i64,
) -> Result<()> {
    let done =
        sqlx::query("UPDATE pool_keys SET in_use = in_use - $1 WHERE id = $2 AND in_use >= $1")
            .bind(amount)
            .bind(key_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if done == 0 {
        tracing::error!(
            key_id,
            amount,
            "a key had fewer seats in use than a seat gave back"
        );
    }
    Ok(())
}

/// Inserts a seat; `None` if the session holds a live seat of the feature already.
async fn insert_seat(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    seat: &SeatAsk<'_>,
    key: &KeyRow,
    amount: i64,
    bundle_of: Option<i64>,
    token: &str,
) -> Result<Option<i64>> {
    let inserted = sqlx::query_scalar(
        "INSERT INTO seats (pool_id, key_id, bundle_of, editor, feature, user_name, host, process, \
         session, client_release_number, client_release_day, amount, lease_token_hash, \
         granted_at, last_heartbeat_at, lease_expires_at, ask_model, ask_commercial_type, \
         ask_customer_id, ask_pricing_structure) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, \
         $17, $18, $19) RETURNING id",
    )
    .bind(seat.pool_id)
    .bind(key.id)
    .bind(bundle_of)
    .bind(&key.editor)
    .bind(&key.feature)
    .bind(seat.user)
    .bind(seat.host)
    .bind(seat.process)
    .bind(seat.session)
    .bind(seat.release_number)
    .bind(seat.release_day)
    .bind(amount)
    .bind(crate::token::digest(token))
    .bind(seat.now)
    .bind(seat.now + seat.lease_secs)
    .bind(seat.ask.model.map(Model::as_str))
    .bind(seat.ask.commercial_type.map(CommercialType::as_str))
    .bind(seat.ask.customer_id.as_deref())
    .bind(seat.ask.pricing_structure.as_deref())
    .fetch_one(&mut **tx)
    .await;
    match inserted {
        Ok(id) => Ok(Some(id)),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
