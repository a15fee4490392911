//! Products, orders, licences and activations as the portal and the Web API show them, and the
//! rules their input must meet (checked in the browser before sending and on the server).

mod form;

pub use form::{
    counter_lines, counter_rows, feature_lines, parse_counter_lines, parse_feature_codes,
    parse_feature_lines, ProductForm,
};

use crate::input::InputError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A module or option a product can enable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feature {
    pub code: String,
    pub name: String,
}

/// How a product's licences behave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicensingSettings {
    /// Limited (expiring) licences.
    pub limited: bool,
    pub validity_days: Option<i64>,
    /// "YYYY-MM-DD"
    pub fixed_start: Option<String>,
    pub fixed_end: Option<String>,
    pub expire_day_of_month: Option<u32>,
    /// End users may remove (and so transfer) their activations; never for limited licences.
    pub end_user_removal: bool,
    /// Activations a licence allows over its life (a transfer uses one).
    pub max_activations: i64,
    /// How often an application validates its activation.
    pub validate_every_days: i64,
    pub licences_per_serial: i64,
    pub heartbeat_secs: i64,
    pub borrowing_allowed: bool,
    pub max_borrow_days: i64,
    /// Sold for customers' site licence servers: each licence links one site server (never an
    /// application's machine), which must refresh its entitlement within this many days
    /// (1–365). `None`: licences activate on machines.
    #[serde(default)]
    pub site_refresh_days: Option<i64>,
}

impl Default for LicensingSettings {
    fn default() -> Self {
        Self {
            limited: false,
            validity_days: None,
            fixed_start: None,
            fixed_end: None,
            expire_day_of_month: None,
            end_user_removal: true,
            max_activations: 3,
            validate_every_days: 7,
            licences_per_serial: 1,
            heartbeat_secs: 120,
            borrowing_allowed: false,
            max_borrow_days: 30,
            site_refresh_days: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub editor: String,
    pub release_number: i64,
    pub release_date: Option<String>,
    pub features: Vec<Feature>,
    pub default_features: Vec<String>,
    pub default_counters: BTreeMap<String, i64>,
    pub settings: LicensingSettings,
    pub created_at: i64,
}

/// What an administrator submits to create or change a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductInput {
    pub code: String,
    pub name: String,
    pub editor: String,
    pub release_number: i64,
    pub release_date: Option<String>,
    pub features: Vec<Feature>,
    pub default_features: Vec<String>,
    pub default_counters: BTreeMap<String, i64>,
    pub settings: LicensingSettings,
}

/// An order: one client, one product, a number of licences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: i64,
    pub client_id: i64,
    pub client_name: String,
    pub product_id: i64,
    pub product_code: String,
    pub product_name: String,
    pub reference: String,
    pub quantity: i64,
    pub features: Vec<String>,
    pub counters: BTreeMap<String, i64>,
    pub notes: String,
    pub created_at: i64,
    /// Licences of the order bound to a machine now.
    pub active: i64,
}

/// What an edit does to a licence's end date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiryEdit {
    /// Leave it as it is.
    #[default]
    Keep,
    /// No end date: the licence never expires (a limited licence becomes open-ended).
    NoEnd,
    /// Ends after this day, `YYYY-MM-DD` (today or later).
    On(String),
}

impl ExpiryEdit {
    /// A form's date field and "no end date" box: an empty date keeps the end.
    pub fn from_form(date: &str, no_end: bool) -> Self {
        match (no_end, date.trim()) {
            (true, _) => Self::NoEnd,
            (false, "") => Self::Keep,
            (false, d) => Self::On(d.to_owned()),
        }
    }
}

/// What removing a licence from its machine did: from when another machine may take it. A
/// removal made without the machine waits until the machine's code can no longer pass offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Removal {
    /// Unix seconds; `null`: at once.
    pub frees_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Licence {
    pub id: i64,
    /// The order of a standard-model licence; `None` for a web licence.
    pub order_id: Option<i64>,
    /// The serial of a web licence; `None` for a standard-model licence.
    pub serial_id: Option<i64>,
    pub key: String,
    /// What the licence grants now (its own values, or the order's until it has its own).
    pub features: Vec<String>,
    pub counters: BTreeMap<String, i64>,
    /// Last valid day of a limited licence, fixed at its first activation.
    pub expires_on: Option<String>,
    /// An administrator gave it no end date: even a limited product's first activation fixes
    /// none.
    pub open_ended: bool,
    pub activation_count: i64,
    pub activation: Option<Activation>,
    /// Removed from a machine without it, whose code may still pass offline: no other machine
    /// takes the licence before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_free: Option<PendingFree>,
}

/// A removal made without the machine that has not freed its licence yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingFree {
    /// The machine it was removed from.
    pub hostname: String,
    /// Unix seconds: when the licence frees.
    pub frees_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activation {
    pub id: i64,
    pub licence_id: i64,
    pub hostname: String,
    pub fingerprint: String,
    /// "online" or "offline".
    pub mode: String,
    pub activated_at: i64,
    pub last_validated_at: Option<i64>,
    pub removed_at: Option<i64>,
    /// Who removed it: "user", or the portal role and user id ("admin:3").
    #[serde(default)]
    pub removed_by: Option<String>,
    /// The serial a web licence was activated with.
    #[serde(default)]
    pub serial: Option<String>,
    /// How many times the application validated it (its activation not counted).
    #[serde(default)]
    pub validations: i64,
}

/// A live activation in the activations list: which licence, whose, on which machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivationRow {
    pub activation: Activation,
    pub licence_key: String,
    /// The order (standard model) or the serial (web model) the licence belongs to.
    pub order_id: Option<i64>,
    pub serial_id: Option<i64>,
    /// The client of a standard-model licence; empty for a web licence.
    pub client_name: String,
    pub product_code: String,
    pub expires_on: Option<String>,
}

/// Which activations a list shows and in what order (the Web API's query parameters, the
/// portal's filters); everything optional. A page of them is asked for beside (`limit`,
/// `after`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ActivationFilter {
    /// Part of a licence key, serial, machine name, client name or product code (any case).
    #[cfg_attr(feature = "openapi", param(max_length = 100))]
    pub q: Option<String>,
    /// Only this product's (its code, exactly).
    pub product: Option<String>,
    /// Only this client's (administrators).
    pub client_id: Option<i64>,
    /// `online` or `offline`.
    pub mode: Option<String>,
    /// `live` (default: bound to their machine now), `removed` or `all`.
    pub status: Option<String>,
    /// Only licences whose end falls within the next this many days (0–3650; 0: today).
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 3650))]
    pub expiring_within_days: Option<i64>,
    /// `activated` (default), `validated`, `machine`, `client` or `product`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
}

impl ActivationFilter {
    /// The filters as a URL query string (empty ones left out), for links and the CSV export.
    pub fn query_string(&self) -> String {
        query_string(
            &[
                ("q", &self.q),
                ("product", &self.product),
                ("mode", &self.mode),
                ("status", &self.status),
                ("sort", &self.sort),
                ("order", &self.order),
            ],
            &[
                ("client_id", self.client_id),
                ("expiring_within_days", self.expiring_within_days),
            ],
        )
    }
}

/// A list's filters as a URL query string: the texts, then the numbers, empty ones left out.
pub(crate) fn query_string(
    texts: &[(&str, &Option<String>)],
    ints: &[(&str, Option<i64>)],
) -> String {
    let mut pairs: Vec<String> = texts
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| format!("{k}={}", crate::audit::percent_encode(v)))
        })
        .collect();
    pairs.extend(
        ints.iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))),
    );
    pairs.join("&")
}

/// A page of a filtered list, and how many match the filters in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table<T> {
    pub rows: Vec<T>,
    pub total: i64,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// A page of the activations list.
pub type ActivationTable = Table<ActivationRow>;

/// A page of the licences list.
pub type LicenceTable = Table<LicenceListRow>;

/// A page of the orders list.
pub type OrderTable = Table<Order>;

/// Which orders a list shows and in what order (the Web API's query parameters, the portal's
/// filters); everything optional. A page of them is asked for beside (`limit`, `after`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct OrderFilter {
    /// Part of the client's name, the product's code or name, or the reference (any case); or
    /// the order's number (`12` or `#12`).
    #[cfg_attr(feature = "openapi", param(max_length = 100))]
    pub q: Option<String>,
    /// Only this client's orders (a client user naming another client is refused, 403).
    pub client_id: Option<i64>,
    /// Only this product's (its code, exactly).
    pub product: Option<String>,
    /// `created` (default), `client` or `product`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
}

impl OrderFilter {
    /// The filters as a URL query string (empty ones left out), for links and the CSV export.
    pub fn query_string(&self) -> String {
        query_string(
            &[
                ("q", &self.q),
                ("product", &self.product),
                ("sort", &self.sort),
                ("order", &self.order),
            ],
            &[("client_id", self.client_id)],
        )
    }
}

/// Where a licence stands today, as the licences list shows and filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LicenceStatus {
    /// No machine holds it: the next activation takes it.
    Available,
    /// Bound to a machine, or removed without it and not freed yet.
    InUse,
    /// Its last day has passed.
    Expired,
    /// Still held by a machine activated with a serial since revoked (a web licence): the
    /// machine is told at its next validation to activate again with the replacement.
    Revoked,
}

impl LicenceStatus {
    pub const ALL: [LicenceStatus; 4] = [
        LicenceStatus::Available,
        LicenceStatus::InUse,
        LicenceStatus::Expired,
        LicenceStatus::Revoked,
    ];

    /// The word the API and the address use (`in_use`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LicenceStatus::Available => "available",
            LicenceStatus::InUse => "in_use",
            LicenceStatus::Expired => "expired",
            LicenceStatus::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// As a person reads it.
    pub const fn label(self) -> &'static str {
        match self {
            LicenceStatus::Available => "Available",
            LicenceStatus::InUse => "In use",
            LicenceStatus::Expired => "Expired",
            LicenceStatus::Revoked => "Revoked serial",
        }
    }
}

/// A licence in the licences list: its terms and machine, whose it is and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenceListRow {
    pub licence: Licence,
    /// The client of a standard-model licence; `None` for a web licence.
    pub client_id: Option<i64>,
    /// The client's name; empty for a web licence.
    pub client_name: String,
    pub product_code: String,
    /// A web licence's serial.
    pub serial: Option<String>,
    pub status: LicenceStatus,
}

/// Which licences a list shows and in what order, across orders and serials (the Web API's
/// query parameters, the portal's filters); everything optional. A page of them is asked for
/// beside (`limit`, `after`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct LicenceFilter {
    /// Part of a client name, product code or machine name (any case); of a licence key or
    /// serial too for a caller who sees them whole, and of the vendor's notes for an
    /// administrator.
    #[cfg_attr(feature = "openapi", param(max_length = 100))]
    pub q: Option<String>,
    /// Only this product's (its code, exactly).
    pub product: Option<String>,
    /// Only this client's (administrators).
    pub client_id: Option<i64>,
    /// `available`, `in_use`, `expired` or `revoked` (default: every licence).
    pub status: Option<String>,
    /// Only licences granting this feature (its code, exactly).
    pub feature: Option<String>,
    /// Only licences whose end falls within the next this many days (0–3650; 0: today).
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 3650))]
    pub expiring_within_days: Option<i64>,
    /// `true`: only time-limited licences still running (trials among them): an end date,
    /// today or later. `false` or absent: every licence.
    pub time_limited: Option<bool>,
    /// `created` (default), `expires`, `client` or `product`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
}

impl LicenceFilter {
    /// The filters as a URL query string (empty ones left out), for links and the CSV export.
    pub fn query_string(&self) -> String {
        let time_limited = self.time_limited.map(|b| b.to_string());
        query_string(
            &[
                ("q", &self.q),
                ("product", &self.product),
                ("status", &self.status),
                ("feature", &self.feature),
                ("time_limited", &time_limited),
                ("sort", &self.sort),
                ("order", &self.order),
            ],
            &[
                ("client_id", self.client_id),
                ("expiring_within_days", self.expiring_within_days),
            ],
        )
    }
}

/// What one bulk action does to each licence it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BulkLicenceAction {
    /// Each end moved this many days later (from today once passed); every licence must have
    /// an end.
    Extend { days: i64 },
    /// The feature granted too (it must be in the product's catalogue).
    AddFeature { feature: String },
    /// The feature no longer granted.
    RemoveFeature { feature: String },
    /// Each licence taken off its machine (the application learns at its next validation).
    RemoveFromMachines,
}

/// The most licences one bulk action takes.
pub const BULK_MAX: usize = 500;

impl BulkLicenceAction {
    /// The form's choice (`extend-30`, `extend-365`, `add-feature`, `remove-feature`,
    /// `remove`) and its feature, as an action.
    pub fn from_form(choice: &str, feature: Option<&str>) -> Result<Self, InputError> {
        let feature = || {
            feature
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| InputError::new("feature", "Choose the feature."))
        };
        Ok(match choice {
            "extend-30" => Self::Extend { days: 30 },
            "extend-365" => Self::Extend { days: 365 },
            "add-feature" => Self::AddFeature {
                feature: feature()?,
            },
            "remove-feature" => Self::RemoveFeature {
                feature: feature()?,
            },
            "remove" => Self::RemoveFromMachines,
            _ => {
                return Err(InputError::new(
                    "action",
                    "Choose what to do to the ticked licences.",
                ))
            }
        })
    }

    /// The features a licence grants after this action (`None`: it leaves them alone).
    pub fn features_after(&self, features: &[String]) -> Option<Vec<String>> {
        match self {
            Self::AddFeature { feature } => {
                let mut out = features.to_vec();
                if !out.contains(feature) {
                    out.push(feature.clone());
                    out.sort();
                }
                Some(out)
            }
            Self::RemoveFeature { feature } => {
                Some(features.iter().filter(|f| *f != feature).cloned().collect())
            }
            _ => None,
        }
    }
}

/// The licences picked for a bulk action: 1 to `BULK_MAX`, each once, in the order given.
pub fn bulk_ids(ids: &[i64]) -> Result<Vec<i64>, InputError> {
    let mut seen = std::collections::BTreeSet::new();
    let picked: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    match picked.len() {
        0 => Err(InputError::new("ids", "Tick at least one licence.")),
        n if n > BULK_MAX => Err(InputError::new(
            "ids",
            format!("One bulk action takes at most {BULK_MAX} licences."),
        )),
        _ => Ok(picked),
    }
}

/// Everything about one licence on one page: its terms, every activation it had (the live one
/// first if any), the changes the audit log recorded about it and, for administrators, the
/// vendor's notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicencePage {
    pub licence: Licence,
    pub product: Product,
    /// The client of a standard-model licence; `None` for a web licence.
    pub client: Option<crate::account::ClientRef>,
    /// The order's reference (standard model).
    #[serde(default)]
    pub order_reference: Option<String>,
    /// The serial of a web licence (masked for a read-only token).
    #[serde(default)]
    pub serial: Option<String>,
    /// Its end has passed (UTC): applications are told so at their next validation.
    pub expired: bool,
    /// Every activation, newest first, removed ones included.
    pub activations: Vec<Activation>,
    /// What the audit log recorded about this licence, newest first (at most 200 entries).
    pub changes: Vec<crate::audit::AuditEntry>,
    /// The vendor's notes: administrators only (`None` for a client user).
    #[serde(default)]
    pub notes: Option<String>,
}

/// A batch of serial numbers generated together for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SerialBatch {
    pub id: i64,
    pub product_id: i64,
    pub product_code: String,
    /// The features stored in its serials; `None`: the product's default features.
    pub features: Option<Vec<String>>,
    pub licences_per_serial: i64,
    pub note: String,
    pub created_at: i64,
    pub serials: i64,
}

/// A serial number of the web licensing model, with how its licences are used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Serial {
    pub id: i64,
    /// Grouped for reading aloud: `XXXX-XXXX-…` in Crockford's base32.
    pub serial: String,
    pub batch_id: i64,
    pub product_id: i64,
    pub product_code: String,
    /// The features stored in the serial; `None`: the product's default features.
    pub features: Option<Vec<String>>,
    /// Licences (activation slots) the serial grants, and how many are bound to a machine now.
    pub licences: i64,
    pub active: i64,
    /// Host names of the machines holding its licences now.
    pub hostnames: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_note: String,
    /// The serial that replaced this revoked one, and the one this serial replaced.
    pub replaced_by: Option<String>,
    pub replaces: Option<String>,
}

/// A serial with its licences and every activation they have had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SerialDetail {
    pub serial: Serial,
    pub licences: Vec<Licence>,
    /// Newest first, removed ones included.
    pub history: Vec<Activation>,
}

/// A bearer token for the management API, as its owner and administrators see it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// Read-write; otherwise read-only.
    pub can_write: bool,
    pub owner_email: String,
    /// The client whose data it is limited to (a client user's token).
    pub client_name: Option<String>,
    pub created_at: i64,
    /// Refused from this time on.
    pub expires_at: i64,
    /// Past `expires_at` when the list was made (by the server's clock).
    pub expired: bool,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn code_like(
    field: &'static str,
    label: &str,
    raw: &str,
    max: usize,
) -> Result<String, InputError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(InputError::new(field, format!("{label} is required.")));
    }
    if v.len() > max
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(InputError::new(
            field,
            format!("{label} may use letters, digits, '-', '_' and '.', at most {max} characters."),
        ));
    }
    Ok(v.to_owned())
}

/// A product code: upper-cased, e.g. `ELEC-CALC`.
pub fn product_code(raw: &str) -> Result<String, InputError> {
    code_like("code", "Product code", raw, 32).map(|c| c.to_uppercase())
}

pub fn feature_code(raw: &str) -> Result<String, InputError> {
    code_like("features", "A feature code", raw, 40)
}

pub fn counter_name(raw: &str) -> Result<String, InputError> {
    code_like("counters", "A counter name", raw, 40)
}

/// Feature codes, each once, in the order given.
pub fn feature_list(raw: &[String]) -> Result<Vec<String>, InputError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for f in raw {
        let code = feature_code(f)?;
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    Ok(out)
}

pub fn counters(raw: &BTreeMap<String, i64>) -> Result<BTreeMap<String, i64>, InputError> {
    raw.iter()
        .map(|(k, v)| Ok((counter_name(k)?, *v)))
        .collect()
}

/// Checks features enabled on an order or licence against the product's catalogue.
pub fn features_in_catalogue(enabled: &[String], catalogue: &[Feature]) -> Result<(), InputError> {
    match enabled
        .iter()
        .find(|f| !catalogue.iter().any(|c| &c.code == *f))
    {
        Some(f) => Err(InputError::new(
            "features",
            format!("The feature {f} is not in the product's catalogue."),
        )),
        None => Ok(()),
    }
}

impl ProductInput {
    /// Normalises and checks a product as submitted.
    pub fn validate(mut self) -> Result<Self, InputError> {
        self.code = product_code(&self.code)?;
        self.name = crate::input::PersonName::parse(&self.name)
            .map_err(|e| InputError::new("name", e.message.replace("Name", "Product name")))?
            .into_inner();
        self.editor = self.editor.trim().to_owned();
        if self.editor.chars().count() > 100 {
            return Err(InputError::new(
                "editor",
                "Editor must be at most 100 characters.",
            ));
        }
        if self.release_number < 0 {
            return Err(InputError::new(
                "release_number",
                "Release number cannot be negative.",
            ));
        }
        if let Some(d) = &self.release_date {
            if crate::time::parse_date(d).is_none() {
                return Err(InputError::new(
                    "release_date",
                    "Release date must be a date such as 2026-11-25.",
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for f in &mut self.features {
            f.code = feature_code(&f.code)?;
            f.name = f.name.trim().to_owned();
            if f.name.is_empty() {
                f.name = f.code.clone();
            }
            if !seen.insert(f.code.clone()) {
                return Err(InputError::new(
                    "features",
                    format!("The feature {} is listed twice.", f.code),
                ));
            }
        }
        self.default_features = feature_list(&self.default_features)?;
        features_in_catalogue(&self.default_features, &self.features)?;
        self.default_counters = counters(&self.default_counters)?;
        self.settings = self.settings.validate()?;
        Ok(self)
    }
}

impl LicensingSettings {
    pub fn validate(self) -> Result<Self, InputError> {
        let s = self;
        let date = |field: &'static str, v: &Option<String>| -> Result<Option<i64>, InputError> {
            match v {
                None => Ok(None),
                Some(d) if d.trim().is_empty() => Ok(None),
                Some(d) => crate::time::parse_date(d)
                    .map(Some)
                    .ok_or_else(|| InputError::new(field, "Enter a date such as 2026-11-25.")),
            }
        };
        let start = date("fixed_start", &s.fixed_start)?;
        let end = date("fixed_end", &s.fixed_end)?;
        if let (Some(a), Some(b)) = (start, end) {
            if a > b {
                return Err(InputError::new(
                    "fixed_end",
                    "The fixed end date is before the start date.",
                ));
            }
        }
        if s.validity_days.is_some_and(|d| !(1..=36_500).contains(&d)) {
            return Err(InputError::new(
                "validity_days",
                "Validity must be from 1 to 36500 days.",
            ));
        }
        if s.limited && s.end_user_removal {
            return Err(InputError::new(
                "end_user_removal",
                "Users of limited licences cannot remove them (the period would start again on \
                 another machine): untick \u{201c}End users may remove\u{201d}, or make the product \
                 unlimited.",
            ));
        }
        if s.limited && s.validity_days.is_none() && end.is_none() {
            return Err(InputError::new(
                "validity_days",
                "A limited licence needs a validity in days or a fixed end date.",
            ));
        }
        if s.expire_day_of_month
            .is_some_and(|d| !(1..=31).contains(&d))
        {
            return Err(InputError::new(
                "expire_day_of_month",
                "The day of the month must be from 1 to 31.",
            ));
        }
        let range = |field: &'static str, label: &str, v: i64, lo: i64, hi: i64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(InputError::new(
                    field,
                    format!("{label} must be from {lo} to {hi}."),
                ))
            }
        };
        range(
            "max_activations",
            "Activations per licence",
            s.max_activations,
            1,
            10_000,
        )?;
        range(
            "validate_every_days",
            "Validation interval",
            s.validate_every_days,
            1,
            365,
        )?;
        range(
            "licences_per_serial",
            "Licences per serial",
            s.licences_per_serial,
            1,
            100,
        )?;
        range(
            "heartbeat_secs",
            "Heartbeat interval",
            s.heartbeat_secs,
            10,
            86_400,
        )?;
        range(
            "max_borrow_days",
            "Longest borrowing",
            s.max_borrow_days,
            1,
            365,
        )?;
        if let Some(days) = s.site_refresh_days {
            range(
                "site_refresh_days",
                "The site servers' refresh period",
                days,
                1,
                crate::site::MAX_REFRESH_DAYS,
            )?;
        }
        Ok(Self {
            fixed_start: start.map(crate::time::format_date),
            fixed_end: end.map(crate::time::format_date),
            ..s
        })
    }
}

#[cfg(test)]
mod tests;
