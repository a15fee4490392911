//! Products, orders and licences: the standard model of the Activation Center. Features and
//! counters cascade product → order → licence; a licence keeps its own copy once activated (or
//! once an administrator edits it).

mod licences;
mod lists;
pub mod notices;
mod orders;
mod products;

use crate::audit::{Entry, Who};
use crate::db::{Bind, Conditions};
use crate::page::{Page, Paged};
use crate::{require_admin, Error, Licentia, Result};
use protocol::account::{CurrentUser, Role};
use protocol::audit::{record_changes, AuditAction};
use protocol::catalog::{
    features_in_catalogue, Activation, ActivationFilter, ActivationRow, BulkLicenceAction,
    ExpiryEdit, Feature, Licence, LicencePage, LicensingSettings, Order, OrderFilter, PendingFree,
    Product, ProductInput,
};
use protocol::input::{self, InputError};
use protocol::time::{day_of, format_date, parse_date};
use rand::rngs::OsRng;
use rand::Rng;
use std::collections::BTreeMap;

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A record as JSON, to compare before and after a change.
fn as_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// How a licence is named in the audit log: its id and the first characters of its key.
pub(crate) fn licence_subject(id: i64, key: &str) -> String {
    format!(
        "{}{})",
        licence_subject_prefix(id),
        protocol::redact::mask(key)
    )
}

/// How every audit subject naming licence `id` starts (and no other subject does).
pub(crate) fn licence_subject_prefix(id: i64) -> String {
    format!("licence {id} (")
}

/// What a licence grants, to compare before and after a change.
fn licence_terms_json(l: &Licence) -> serde_json::Value {
    serde_json::json!({
        "features": l.features,
        "counters": l.counters,
        "expires on": l.expires_on,
        "no end date": l.open_ended,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s)
        .map_err(|e| Error::Internal(format!("stored {what} are malformed: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProductRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub editor: String,
    pub release_number: i64,
    pub release_date: Option<i64>,
    pub features: String,
    pub default_features: String,
    pub default_counters: String,
    pub limited: i64,
    pub validity_days: Option<i64>,
    pub fixed_start: Option<i64>,
    pub fixed_end: Option<i64>,
    pub expire_day_of_month: Option<i64>,
    pub end_user_removal: i64,
    pub max_activations: i64,
    pub validate_every_days: i64,
    pub licences_per_serial: i64,
    pub heartbeat_secs: i64,
    pub borrowing_allowed: i64,
    pub max_borrow_days: i64,
    pub site_refresh_days: Option<i64>,
    pub created_at: i64,
}

impl ProductRow {
    pub(crate) fn into_product(self) -> Result<Product> {
        Ok(Product {
            features: parse_json::<Vec<Feature>>(&self.features, "features")?,
            default_features: parse_json(&self.default_features, "features")?,
            default_counters: parse_json(&self.default_counters, "counters")?,
            settings: LicensingSettings {
                limited: self.limited != 0,
                validity_days: self.validity_days,
                fixed_start: self.fixed_start.map(format_date),
                fixed_end: self.fixed_end.map(format_date),
                expire_day_of_month: self.expire_day_of_month.and_then(|d| u32::try_from(d).ok()),
                end_user_removal: self.end_user_removal != 0,
                max_activations: self.max_activations,
                validate_every_days: self.validate_every_days,
                licences_per_serial: self.licences_per_serial,
                heartbeat_secs: self.heartbeat_secs,
                borrowing_allowed: self.borrowing_allowed != 0,
                max_borrow_days: self.max_borrow_days,
                site_refresh_days: self.site_refresh_days,
            },
            id: self.id,
            code: self.code,
            name: self.name,
            editor: self.editor,
            release_number: self.release_number,
            release_date: self.release_date.map(format_date),
            created_at: self.created_at,
        })
    }
}

pub(crate) const PRODUCT_COLUMNS: &str = "p.id, p.code, p.name, p.editor, p.release_number, \
     p.release_date, p.features, p.default_features, p.default_counters, p.limited, \
     p.validity_days, p.fixed_start, p.fixed_end, p.expire_day_of_month, p.end_user_removal, \
     p.max_activations, p.validate_every_days, p.licences_per_serial, p.heartbeat_secs, \
     p.borrowing_allowed, p.max_borrow_days, p.site_refresh_days, p.created_at";

/// The alphabet of licence keys: no 0/O or 1/I/L to confuse when read aloud.
const KEY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new random licence key, `XXXXX-XXXXX-XXXXX-XXXXX` (about 99 bits).
pub fn new_licence_key() -> String {
    let mut rng = OsRng;
    (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(KEY_ALPHABET[rng.gen_range(0..KEY_ALPHABET.len())]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Normalises a licence key as typed: upper case, spaces dropped. Refuses what cannot be one.
pub fn parse_licence_key(raw: &str) -> Result<String, InputError> {
    let key: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if key.is_empty() {
        return Err(InputError::new(
            "licence_key",
            "The licence key is required.",
        ));
    }
    if key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(InputError::new(
            "licence_key",
            "That is not a licence key: it looks like XXXXX-XXXXX-XXXXX-XXXXX.",
        ));
    }
    Ok(key)
}

/// What an order is made of, as submitted.
pub struct OrderInput {
    pub client_id: i64,
    pub product_id: i64,
    pub quantity: i64,
    pub reference: String,
    /// `None`: the product's defaults.
    pub features: Option<Vec<String>>,
    pub counters: Option<BTreeMap<String, i64>>,
    pub notes: String,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    client_id: i64,
    client_name: String,
    product_id: i64,
    product_code: String,
    product_name: String,
    reference: String,
    features: String,
    counters: String,
    notes: String,
    created_at: i64,
    quantity: i64,
    active: i64,
}

impl OrderRow {
    fn into_order(self) -> Result<Order> {
        Ok(Order {
            features: parse_json(&self.features, "features")?,
            counters: parse_json(&self.counters, "counters")?,
            id: self.id,
            client_id: self.client_id,
            client_name: self.client_name,
            product_id: self.product_id,
            product_code: self.product_code,
            product_name: self.product_name,
            reference: self.reference,
            notes: self.notes,
            created_at: self.created_at,
            quantity: self.quantity,
            active: self.active,
        })
    }
}

const ORDER_SELECT: &str = "SELECT o.id, o.client_id, c.name AS client_name, o.product_id, \
     p.code AS product_code, p.name AS product_name, o.reference, o.features, o.counters, o.notes, \
     o.created_at, \
     (SELECT COUNT(*) FROM licences l WHERE l.order_id = o.id) AS quantity, \
     (SELECT COUNT(*) FROM licences l JOIN activations a ON a.licence_id = l.id \
        WHERE l.order_id = o.id AND a.removed_at IS NULL) AS active \
     FROM orders o JOIN clients c ON c.id = o.client_id JOIN products p ON p.id = o.product_id";

/// A licence's features, counters and end as stored: its own features and counters once it was
/// first activated (or given terms), its order's until then; a web licence has its own from the
/// start. Select `l.features, l.counters, COALESCE(o.features, '[]') AS order_features,
/// COALESCE(o.counters, '{}') AS order_counters, l.expires_on`.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredTerms {
    pub features: Option<String>,
    pub counters: Option<String>,
    pub order_features: String,
    pub order_counters: String,
    pub expires_on: Option<i64>,
}

impl StoredTerms {
    /// The features that apply now, as stored JSON.
    pub fn features_json(&self) -> &str {
        self.features.as_deref().unwrap_or(&self.order_features)
    }

    /// The counters that apply now, as stored JSON.
    pub fn counters_json(&self) -> &str {
        self.counters.as_deref().unwrap_or(&self.order_counters)
    }
}

/// An activation as stored, with the serial it was made with; select `ACTIVATION_COLUMNS`.
#[derive(sqlx::FromRow)]
pub(crate) struct ActivationRecord {
    id: i64,
    licence_id: i64,
    hostname: String,
    fingerprint: String,
    mode: String,
    activated_at: i64,
    last_validated_at: Option<i64>,
    removed_at: Option<i64>,
    removed_by: Option<String>,
    serial: Option<String>,
    validations: i64,
}

/// The columns of `ActivationRecord`, from `activations a` and `serials s` (joined on the
/// activation's serial).
pub(crate) const ACTIVATION_COLUMNS: &str = "a.id, a.licence_id, a.hostname, a.fingerprint, \
     a.mode, a.activated_at, a.last_validated_at, a.removed_at, a.removed_by, s.serial, \
     a.validations";

impl From<ActivationRecord> for Activation {
    fn from(r: ActivationRecord) -> Self {
        Activation {
            id: r.id,
            licence_id: r.licence_id,
            hostname: r.hostname,
            fingerprint: r.fingerprint,
            mode: r.mode,
            activated_at: r.activated_at,
            last_validated_at: r.last_validated_at,
            removed_at: r.removed_at,
            removed_by: r.removed_by,
            serial: r.serial,
            validations: r.validations,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LicenceRow {
    id: i64,
    order_id: Option<i64>,
    serial_id: Option<i64>,
    licence_key: String,
    #[sqlx(flatten)]
    terms: StoredTerms,
    open_ended: i64,
    activation_count: i64,
    act_id: Option<i64>,
    act_hostname: Option<String>,
    act_fingerprint: Option<String>,
    act_mode: Option<String>,
    act_activated_at: Option<i64>,
    act_last_validated_at: Option<i64>,
    act_serial: Option<String>,
    act_validations: Option<i64>,
    frees_at: Option<i64>,
    frees_host: Option<String>,
}

/// The columns of `LicenceRow`, from `LICENCE_TABLES`.
macro_rules! licence_columns {
    () => {
        "l.id, l.order_id, l.serial_id, l.licence_key, \
         l.features, l.counters, COALESCE(o.features, '[]') AS order_features, \
         COALESCE(o.counters, '{}') AS order_counters, l.expires_on, l.open_ended, \
         l.activation_count, a.id AS act_id, a.hostname AS act_hostname, a.fingerprint AS act_fingerprint, \
         a.mode AS act_mode, a.activated_at AS act_activated_at, \
         a.last_validated_at AS act_last_validated_at, s.serial AS act_serial, \
         a.validations AS act_validations, \
         (SELECT MAX(fa.frees_at) FROM activations fa WHERE fa.licence_id = l.id) AS frees_at, \
         (SELECT fa.hostname FROM activations fa WHERE fa.licence_id = l.id AND fa.frees_at IS NOT NULL \
            ORDER BY fa.frees_at DESC LIMIT 1) AS frees_host"
    };
}

/// Licences of either model (`l`), each with its order (`o`), its live activation (`a`) and
/// the serial that activation was made with (`s`).
macro_rules! licence_tables {
    () => {
        "FROM licences l LEFT JOIN orders o ON o.id = l.order_id \
         LEFT JOIN activations a ON a.licence_id = l.id AND a.removed_at IS NULL \
         LEFT JOIN serials s ON s.id = a.serial_id"
    };
}

pub(crate) const LICENCE_COLUMNS: &str = licence_columns!();
pub(crate) const LICENCE_TABLES: &str = licence_tables!();

/// Licences of either model, each with its live activation. A web licence has no order: its
/// features and counters are its own from the start.
pub(crate) const LICENCE_SELECT: &str =
    concat!("SELECT ", licence_columns!(), " ", licence_tables!());

impl LicenceRow {
    /// The licence as shown, at `now` (a pending free that has passed is none).
    pub(crate) fn into_licence(self, now: i64) -> Result<Licence> {
        let pending_free = match (self.frees_at, self.frees_host) {
            (Some(frees_at), Some(hostname)) if frees_at > now => {
                Some(PendingFree { hostname, frees_at })
            }
            _ => None,
        };
        let activation = match (self.act_id, self.act_activated_at) {
            (Some(id), Some(activated_at)) => Some(Activation {
                id,
                licence_id: self.id,
                hostname: self.act_hostname.unwrap_or_default(),
                fingerprint: self.act_fingerprint.unwrap_or_default(),
                mode: self.act_mode.unwrap_or_default(),
                activated_at,
                last_validated_at: self.act_last_validated_at,
                removed_at: None,
                removed_by: None,
                serial: self.act_serial,
                validations: self.act_validations.unwrap_or(0),
            }),
            _ => None,
        };
        Ok(Licence {
            features: parse_json(self.terms.features_json(), "features")?,
            counters: parse_json(self.terms.counters_json(), "counters")?,
            id: self.id,
            order_id: self.order_id,
            serial_id: self.serial_id,
            key: self.licence_key,
            expires_on: self.terms.expires_on.map(format_date),
            open_ended: self.open_ended != 0,
            activation_count: self.activation_count,
            activation,
            pending_free,
        })
    }
}

/// An order as `actor` may see it: the vendor's notes are for administrators only.
fn for_viewer(actor: &CurrentUser, mut order: Order) -> Order {
    if actor.role != Role::Admin {
        order.notes.clear();
    }
    order
}

/// A licence's terms as an administrator gives them, checked against its product: features and
/// counters as stored (JSON), and what becomes of the end date.
pub(crate) struct LicenceTerms {
    pub features: String,
    pub counters: String,
    pub end: TermsEnd,
}

pub(crate) enum TermsEnd {
    Keep,
    NoEnd,
    On(i64),
}

/// An order's reference (a purchase order number, say): at most 100 printable characters.
fn reference_text(raw: &str) -> Result<String> {
    Ok(input::text_line(
        "reference",
        raw,
        0..=100,
        "The reference must be at most 100 printable characters.",
    )?)
}

/// A new end date for a licence: a real date, today or later (a past one would stop the licence
/// at once, which removing it does openly).
pub(crate) fn parse_end_date(text: &str, today: i64) -> Result<i64> {
    let day = parse_date(text.trim()).ok_or_else(|| {
        InputError::new(
            "expires_on",
            "Enter the expiry as a date such as 2026-11-25.",
        )
    })?;
    if day < today {
        return Err(InputError::new(
            "expires_on",
            format!(
                "{} has passed: the licence would stop at once. Choose today ({}) or a later \
                 date, or remove the licence from its machine to end it now.",
                format_date(day),
                format_date(today)
            ),
        )
        .into());
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_keys_are_readable_and_parse_back() {
        let key = new_licence_key();
        assert_eq!(key.len(), 23);
        assert!(
            key.bytes().all(|b| b == b'-' || KEY_ALPHABET.contains(&b)),
            "{key}"
        );
        assert_eq!(parse_licence_key(&key.to_lowercase()).expect("parses"), key);
        assert_eq!(parse_licence_key(&format!(" {key} ")).expect("parses"), key);
        assert!(parse_licence_key("").is_err());
        assert!(parse_licence_key("'; DROP TABLE licences; --").is_err());
        assert_ne!(new_licence_key(), new_licence_key());
    }
}
