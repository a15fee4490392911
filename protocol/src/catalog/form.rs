//! The product editor as a browser form sends it, and the text formats of its multi-line fields.

use super::*;
use crate::input::{
    form_number as number, optional_form_number as optional_number,
    optional_form_text as optional_text,
};

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
    /// Ticked: the product is sold for site licence servers.
    #[serde(default)]
    pub site_server: Option<String>,
    #[serde(default)]
    pub site_refresh_days: String,
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
        .try_fold(
            BTreeMap::new(),
            |mut out, row: Result<(String, i64), InputError>| {
                let (name, value) = row?;
                if out.insert(name.clone(), value).is_some() {
                    return Err(InputError::new(
                        "counters",
                        format!("The counter {name} is given twice."),
                    ));
                }
                Ok(out)
            },
        )
}

/// Counters as a form's rows send them (`counter_name[]`, `counter_value[]`, in step): a row
/// left blank is dropped, a name twice or a value that is not a whole number refused.
pub fn counter_rows(
    names: &[String],
    values: &[String],
) -> Result<BTreeMap<String, i64>, InputError> {
    if names.len() != values.len() {
        return Err(InputError::new(
            "counters",
            "Each counter needs a name and a value.",
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in names.iter().zip(values) {
        if name.trim().is_empty() && value.trim().is_empty() {
            continue;
        }
        let name = counter_name(name)?;
        let value = value.trim().parse::<i64>().map_err(|_| {
            InputError::new(
                "counters",
                format!("The counter {name} needs a whole number."),
            )
        })?;
        if out.insert(name.clone(), value).is_some() {
            return Err(InputError::new(
                "counters",
                format!("The counter {name} is given twice."),
            ));
        }
    }
    Ok(out)
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
                site_refresh_days: match self.site_server {
                    None => None,
                    Some(_) => Some(number(
                        "site_refresh_days",
                        "The site servers' refresh period",
                        &self.site_refresh_days,
                        crate::site::DEFAULT_REFRESH_DAYS,
                    )?),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_rows_drop_blank_rows_and_refuse_twins_and_fractions() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let ok = counter_rows(&s(&["users", " ", "seats"]), &s(&["5", "", " 3 "])).expect("rows");
        assert_eq!(
            ok,
            BTreeMap::from([("users".into(), 5), ("seats".into(), 3)])
        );
        let twice = counter_rows(&s(&["users", "users"]), &s(&["5", "6"])).expect_err("twice");
        assert!(twice.message.contains("twice"), "{}", twice.message);
        let frac = counter_rows(&s(&["users"]), &s(&["1.5"])).expect_err("whole");
        assert!(frac.message.contains("whole number"), "{}", frac.message);
        assert!(counter_rows(&s(&["users"]), &s(&[])).is_err());
        assert!(
            counter_rows(&s(&["a = 5\nb"]), &s(&["1"])).is_err(),
            "a name is a name"
        );
    }

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
