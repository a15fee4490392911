//! Products, orders, licences and activations as the portal and the Web API show them, and the
//! rules their input must meet (checked in the browser before sending and on the server).

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
        Ok(Self {
            fixed_start: start.map(crate::time::format_date),
            fixed_end: end.map(crate::time::format_date),
            ..s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> ProductInput {
        ProductInput {
            code: " elec-calc ".into(),
            name: "elec calc".into(),
            editor: "Trace".into(),
            release_number: 2026,
            release_date: Some("2026-01-15".into()),
            features: vec![
                Feature {
                    code: "print".into(),
                    name: "Printing".into(),
                },
                Feature {
                    code: "export".into(),
                    name: "".into(),
                },
            ],
            default_features: vec!["print".into(), "print".into()],
            default_counters: BTreeMap::from([("users".into(), 5)]),
            settings: LicensingSettings::default(),
        }
    }

    #[test]
    fn a_valid_product_is_normalised() {
        let p = product().validate().expect("valid");
        assert_eq!(p.code, "ELEC-CALC");
        assert_eq!(p.default_features, ["print"]);
        assert_eq!(p.features[1].name, "export");
    }

    #[test]
    fn product_rules() {
        let mut p = product();
        p.default_features = vec!["fly".into()];
        assert_eq!(
            p.validate().expect_err("not in catalogue").message,
            "The feature fly is not in the product's catalogue."
        );
        let mut p = product();
        p.features.push(Feature {
            code: "print".into(),
            name: "again".into(),
        });
        assert!(p.validate().is_err());
        let mut p = product();
        p.code = "bad code!".into();
        assert_eq!(p.validate().expect_err("code").field, "code");
        let mut p = product();
        p.settings.limited = true;
        p.settings.validity_days = Some(30);
        assert_eq!(
            p.clone().validate().expect_err("removable").field,
            "end_user_removal"
        );
        p.settings.end_user_removal = false;
        assert!(p.clone().validate().is_ok());
        p.settings.validity_days = None;
        assert_eq!(p.validate().expect_err("unbounded").field, "validity_days");
        let mut p = product();
        p.settings.fixed_start = Some("2026-05-01".into());
        p.settings.fixed_end = Some("2026-04-01".into());
        assert_eq!(p.clone().validate().expect_err("order").field, "fixed_end");
        p.settings.fixed_end = Some("2026-02-30".into());
        assert_eq!(p.validate().expect_err("date").field, "fixed_end");
        let mut p = product();
        p.settings.licences_per_serial = 101;
        assert_eq!(
            p.validate().expect_err("range").message,
            "Licences per serial must be from 1 to 100."
        );
    }
}

/// The product editor's fields as a browser form sends them: text, with checkboxes present only
/// when ticked. Features are one `code: Name` per line, counters one `name = value` per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductForm {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub editor: String,
    #[serde(default)]
    pub release_number: String,
    #[serde(default)]
    pub release_date: String,
    #[serde(default)]
    pub features: String,
    #[serde(default)]
    pub default_features: String,
    #[serde(default)]
    pub default_counters: String,
    #[serde(default)]
    pub limited: Option<String>,
    #[serde(default)]
    pub validity_days: String,
    #[serde(default)]
    pub fixed_start: String,
    #[serde(default)]
    pub fixed_end: String,
    #[serde(default)]
    pub expire_day_of_month: String,
    #[serde(default)]
    pub end_user_removal: Option<String>,
    #[serde(default)]
    pub max_activations: String,
    #[serde(default)]
    pub validate_every_days: String,
    #[serde(default)]
    pub licences_per_serial: String,
    #[serde(default)]
    pub heartbeat_secs: String,
    #[serde(default)]
    pub borrowing_allowed: Option<String>,
    #[serde(default)]
    pub max_borrow_days: String,
}

fn number<T: std::str::FromStr>(
    field: &'static str,
    label: &str,
    raw: &str,
    default: T,
) -> Result<T, InputError> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(default);
    }
    v.parse()
        .map_err(|_| InputError::new(field, format!("{label} must be a whole number.")))
}

fn optional_number<T: std::str::FromStr>(
    field: &'static str,
    label: &str,
    raw: &str,
) -> Result<Option<T>, InputError> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| InputError::new(field, format!("{label} must be a whole number.")))
}

fn optional_text(raw: &str) -> Option<String> {
    Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `code: Name` lines (the name is optional).
pub fn parse_feature_lines(raw: &str) -> Result<Vec<Feature>, InputError> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (code, name) = l.split_once(':').unwrap_or((l, ""));
            Ok(Feature {
                code: feature_code(code)?,
                name: name.trim().to_owned(),
            })
        })
        .collect()
}

/// `name = value` lines.
pub fn parse_counter_lines(raw: &str) -> Result<BTreeMap<String, i64>, InputError> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once('=').ok_or_else(|| {
                InputError::new(
                    "counters",
                    format!("Write each counter as name = value (\u{201c}{l}\u{201d})."),
                )
            })?;
            let value = value.trim().parse::<i64>().map_err(|_| {
                InputError::new(
                    "counters",
                    format!("The counter {} needs a whole number.", name.trim()),
                )
            })?;
            Ok((counter_name(name)?, value))
        })
        .collect()
}

/// Comma- or space-separated feature codes.
pub fn parse_feature_codes(raw: &str) -> Result<Vec<String>, InputError> {
    let codes: Vec<String> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    feature_list(&codes)
}

pub fn feature_lines(features: &[Feature]) -> String {
    features
        .iter()
        .map(|f| format!("{}: {}", f.code, f.name))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn counter_lines(counters: &BTreeMap<String, i64>) -> String {
    counters
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ProductForm {
    pub fn into_input(self) -> Result<ProductInput, InputError> {
        let d = LicensingSettings::default();
        Ok(ProductInput {
            code: self.code,
            name: self.name,
            editor: self.editor,
            release_number: number("release_number", "Release number", &self.release_number, 0)?,
            release_date: optional_text(&self.release_date),
            features: parse_feature_lines(&self.features)?,
            default_features: parse_feature_codes(&self.default_features)?,
            default_counters: parse_counter_lines(&self.default_counters)?,
            settings: LicensingSettings {
                limited: self.limited.is_some(),
                validity_days: optional_number("validity_days", "Validity", &self.validity_days)?,
                fixed_start: optional_text(&self.fixed_start),
                fixed_end: optional_text(&self.fixed_end),
                expire_day_of_month: optional_number(
                    "expire_day_of_month",
                    "The day of the month",
                    &self.expire_day_of_month,
                )?,
                end_user_removal: self.end_user_removal.is_some(),
                max_activations: number(
                    "max_activations",
                    "Activations per licence",
                    &self.max_activations,
                    d.max_activations,
                )?,
                validate_every_days: number(
                    "validate_every_days",
                    "Validation interval",
                    &self.validate_every_days,
                    d.validate_every_days,
                )?,
                licences_per_serial: number(
                    "licences_per_serial",
                    "Licences per serial",
                    &self.licences_per_serial,
                    d.licences_per_serial,
                )?,
                heartbeat_secs: number(
                    "heartbeat_secs",
                    "Heartbeat interval",
                    &self.heartbeat_secs,
                    d.heartbeat_secs,
                )?,
                borrowing_allowed: self.borrowing_allowed.is_some(),
                max_borrow_days: number(
                    "max_borrow_days",
                    "Longest borrowing",
                    &self.max_borrow_days,
                    d.max_borrow_days,
                )?,
            },
        })
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;

    #[test]
    fn lines_parse_and_print_back() {
        let f = parse_feature_lines("print: Printing\n\n export \n").expect("valid");
        assert_eq!(
            f,
            vec![
                Feature {
                    code: "print".into(),
                    name: "Printing".into()
                },
                Feature {
                    code: "export".into(),
                    name: "".into()
                }
            ]
        );
        let c = parse_counter_lines("users = 5\nseats=2").expect("valid");
        assert_eq!(counter_lines(&c), "seats = 2\nusers = 5");
        assert_eq!(
            parse_counter_lines("users").expect_err("no =").field,
            "counters"
        );
        assert_eq!(
            parse_counter_lines("users = many")
                .expect_err("nan")
                .message,
            "The counter users needs a whole number."
        );
        assert_eq!(
            parse_feature_codes("print, export print").expect("valid"),
            ["print", "export"]
        );
    }

    #[test]
    fn a_form_becomes_a_product() {
        let form = ProductForm {
            code: "calc".into(),
            name: "Calc".into(),
            features: "print: Printing".into(),
            default_features: "print".into(),
            limited: Some("on".into()),
            validity_days: "30".into(),
            end_user_removal: None,
            ..Default::default()
        };
        let p = form
            .into_input()
            .expect("parses")
            .validate()
            .expect("valid");
        assert!(p.settings.limited && !p.settings.end_user_removal);
        assert_eq!(p.settings.validity_days, Some(30));
        assert_eq!(p.settings.max_activations, 3);
        let bad = ProductForm {
            code: "x".into(),
            name: "X".into(),
            validity_days: "thirty".into(),
            ..Default::default()
        };
        assert_eq!(bad.into_input().expect_err("nan").field, "validity_days");
    }
}
