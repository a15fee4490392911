//! The floating licence server: pools of licence keys, the seat protocol (checkout → heartbeat →
//! release, with leases reclaimed when an application dies), the usage monitor and the
//! explanation of a key choice.
//!
//! In use never exceeds count: a key's `in_use` changes only by conditional updates
//! (`… SET in_use = in_use + n WHERE id = $1 AND in_use + n <= quantity`), which PostgreSQL
//! re-checks on the locked row and SQLite runs one writer at a time, and a CHECK constraint
//! refuses anything else. Releases mark the seat released first, conditionally, so a seat is
//! given back once however many processes race to release or reclaim it.

mod access;
mod borrow;
pub mod casual;
mod checkout;
mod history;
pub use history::{MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};
mod lease;
mod pools;
pub mod rate;
pub mod selection;
pub mod series;
mod usage;

use crate::audit::{Entry, Who};
use crate::db::{Bind, Conditions};
use crate::page::{Page, Paged};
use crate::web::check_serial;
use crate::{require_admin, Error, Licentia, Refusal, Result};
use protocol::account::{CurrentUser, Role};
use protocol::audit::{changed_fields, AuditAction, FieldChange};
use protocol::floating::PricingStructure;
use protocol::floating::{
    Bundle, FeatureUsage, KeyVerdict, Pool, PoolKey, PoolKeyInput, PoolOwner, SeatDetail,
    SilentSeats,
};
use protocol::input::InputError;
use protocol::seats::{
    Beat, CheckoutRequest, ExplainRequest, Grant, PoolRef, ReleaseReason, SeatTerms,
};
use protocol::time::{day_of, format_date, parse_date};
use selection::{Ask, CommercialType, Key, Model, Verdict};

/// How a pool is named in the audit log.
fn pool_subject(id: i64, name: &str) -> String {
    if name.is_empty() {
        format!("pool {id}")
    } else {
        format!("pool {id} ({name})")
    }
}

#[derive(sqlx::FromRow, Clone)]
struct PoolRow {
    id: i64,
    name: String,
    client_id: Option<i64>,
    serial_id: Option<i64>,
    /// The first characters of the pool key (only its digest is kept; the key itself is shown
    /// once, when made).
    key_head: String,
    key_code_digest: String,
    key_rotated_at: Option<i64>,
    max_tokens_per_checkout: Option<i64>,
    /// Found by a replaced key still in its grace (not read from the row).
    #[sqlx(skip)]
    by_previous_key: bool,
    lease_secs: i64,
    /// `SilentSeats` as stored.
    silent_seats: String,
    /// How many access rules the pool has (none: nothing more to read for a checkout).
    access_rules: i64,
    /// How many bundles the pool has (none: nothing more to read for a checkout).
    bundles: i64,
    created_at: i64,
    owner: String,
    mobile_allowed: i64,
    max_borrow_days: Option<i64>,
    /// A serial's pool: whether its product allows borrowing, and for how long.
    product_borrowing: Option<i64>,
    product_borrow_days: Option<i64>,
}

impl PoolRow {
    fn silent_seats(&self) -> SilentSeats {
        SilentSeats::parse(&self.silent_seats).unwrap_or_default()
    }

    /// An audit log entry about this pool, for its client's users to read too.
    fn entry(&self, action: AuditAction) -> Entry {
        Entry::new(action, pool_subject(self.id, &self.name)).of_client(self.client_id)
    }

    /// The longest borrowing (days) the pool allows now.
    fn lending(&self) -> Result<i64, protocol::borrow::LendingOff> {
        let product = self
            .product_borrowing
            .zip(self.product_borrow_days)
            .map(|(allowed, days)| (allowed != 0, days));
        protocol::borrow::lending(self.mobile_allowed != 0, self.max_borrow_days, product)
    }
}

const POOL_SELECT: &str = "SELECT p.id, p.name, p.client_id, p.serial_id, p.key_head, \
     p.key_code_digest, p.key_rotated_at, p.max_tokens_per_checkout, p.lease_secs, \
     p.silent_seats, \
     (SELECT COUNT(*) FROM pool_access_rules r WHERE r.pool_id = p.id) AS access_rules, \
     (SELECT COUNT(*) FROM pool_bundles b WHERE b.pool_id = p.id) AS bundles, \
     p.created_at, COALESCE(c.name, s.serial) AS owner, p.mobile_allowed, p.max_borrow_days, \
     pr.borrowing_allowed AS product_borrowing, pr.max_borrow_days AS product_borrow_days \
     FROM pools p LEFT JOIN clients c ON c.id = p.client_id \
     LEFT JOIN serials s ON s.id = p.serial_id LEFT JOIN products pr ON pr.id = s.product_id";

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
    casual_max_minutes: Option<i64>,
}

const KEY_COLUMNS: &str = "id, pool_id, editor, feature, model, quantity, in_use, start_day, \
     end_day, group_index, max_release_number, max_release_day, commercial_type, customer_id, \
     pricing_structure, additional_info, file_index, generation_day, created_at, \
     casual_max_minutes";

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
                casual_max_minutes: self.casual_max_minutes,
            },
            in_use: self.in_use,
            created_at: self.created_at,
        }
    }
}

/// A feature of a pool as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatFigures {
    pub pool_id: i64,
    /// The pool's id as a label value.
    pub pool_id_text: String,
    pub editor: String,
    pub feature: String,
    pub in_use: i64,
    pub count: i64,
    /// Checkouts refused for want of a seat, since the pool began.
    pub refusals: i64,
}

#[derive(sqlx::FromRow)]
struct SeatRow {
    id: i64,
    pool_id: i64,
    key_id: i64,
    bundle_of: Option<i64>,
    editor: String,
    feature: String,
    user_name: String,
    host: String,
    client_release_number: i64,
    client_release_day: Option<i64>,
    amount: i64,
    released_at: Option<i64>,
    released_by: Option<String>,
    ask_model: Option<String>,
    ask_commercial_type: Option<String>,
    ask_customer_id: Option<String>,
    ask_pricing_structure: Option<String>,
    borrowed_until: Option<i64>,
    borrow_fp: Option<String>,
    borrow_token: Option<String>,
    borrow_nonce: Option<String>,
    borrow_return_hash: Option<String>,
}

const SEAT_COLUMNS: &str = "id, pool_id, key_id, bundle_of, editor, feature, user_name, host, \
     client_release_number, client_release_day, amount, released_at, released_by, ask_model, \
     ask_commercial_type, ask_customer_id, ask_pricing_structure, borrowed_until, borrow_fp, \
     borrow_token, borrow_nonce, borrow_return_hash";

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
    casual_max_minutes: Option<i64>,
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
    let casual_max_minutes = match k.casual_max_minutes {
        None => None,
        Some(_) if model != Model::NamedUser => {
            return Err(InputError::new(
                "casual_max_minutes",
                "Only a NamedUser key can be casual: leave the monthly maximum empty.",
            )
            .into())
        }
        Some(m) if (1..=casual::MAX_MINUTES).contains(&m) => Some(m),
        Some(_) => {
            return Err(InputError::new(
                "casual_max_minutes",
                format!(
                    "The monthly maximum is 1 to {} minutes (a 31-day month).",
                    casual::MAX_MINUTES
                ),
            )
            .into())
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
        casual_max_minutes,
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
        access: None,
    })
}

fn new_access_key() -> String {
    format!("POOL-{}", crate::catalog::new_licence_key())
}

/// What is kept of a pool key: its digest (to find the pool), its first characters (to
/// recognise it) and the digest a borrow request code names the pool by. Never the key.
struct StoredKey {
    hash: String,
    head: String,
    code_digest: String,
}

impl StoredKey {
    fn of(key: &str) -> Self {
        let key = normal_key(key);
        StoredKey {
            hash: crate::token::digest(&key),
            head: key.chars().take(KEY_HEAD_CHARS).collect(),
            code_digest: protocol::borrow::pool_digest(Some(&key), None),
        }
    }
}

/// The digest a pool key is kept and looked up by.
fn pool_key_digest(key: &str) -> String {
    crate::token::digest(&normal_key(key))
}

/// The digest a seat's lease token is kept and looked up by.
fn lease_digest(token: &str) -> String {
    crate::token::digest(token.trim())
}

/// A pool key as it is compared: as typed, trimmed, in upper case.
fn normal_key(key: &str) -> String {
    key.trim().to_uppercase()
}

/// "POOL-" and four characters of the key.
const KEY_HEAD_CHARS: usize = 9;

fn lease_token() -> String {
    format!("seat_{}", crate::token::generate())
}

/// Who holds a seat, as access rules judge them.
fn holder(seat: &SeatRow) -> protocol::access::Asker<'_> {
    protocol::access::Asker {
        user: &seat.user_name,
        host: &seat.host,
    }
}

fn lost(seat: &SeatRow) -> Error {
    let reason = seat
        .released_by
        .as_deref()
        .and_then(ReleaseReason::from_stored)
        .unwrap_or(ReleaseReason::Application);
    let message = format!(
        "Your seat of {} is gone: {}. Check out again.",
        seat.feature,
        reason.why()
    );
    match reason {
        ReleaseReason::LeaseExpired => Error::LeaseExpired(message),
        _ => Error::Gone(message),
    }
}

struct SeatAsk<'a> {
    pool_id: i64,
    user: &'a str,
    host: &'a str,
    process: &'a str,
    session: &'a str,
    /// The digest of the installation's secret, if it sent one.
    installation: Option<&'a str>,
    release_number: i64,
    release_day: Option<i64>,
    now: i64,
    lease_secs: i64,
    ask: &'a Ask,
    /// The pool's access rules (empty for most pools).
    access: &'a protocol::access::PoolAccess,
}

enum Taken {
    Granted(Grant),
    KeyFull,
    BundleMissing(String),
    /// The key had room, but a reservation keeps it from this asker: the feature (the one
    /// asked for, or one bundled with it) and the rule in words.
    Reserved(String, String),
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

/// Locks every key of a feature in a pool (a reservation's checkouts take turns on them).
async fn lock_feature(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pool_id: i64,
    feature: &str,
) -> Result<()> {
    sqlx::query("UPDATE pool_keys SET in_use = in_use WHERE pool_id = $1 AND feature = $2")
        .bind(pool_id)
        .bind(feature)
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
         ask_customer_id, ask_pricing_structure, installation_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, \
         $17, $18, $19, $20) RETURNING id",
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
    .bind(seat.installation)
    .fetch_one(&mut **tx)
    .await;
    match inserted {
        Ok(id) => Ok(Some(id)),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
