//! The seat protocol applications speak to a floating pool — checkout, heartbeat, release — and
//! the terms the key selection looks at (also what *Explain* is asked): written once here,
//! deserialised by the server, sent by the client library, built by the portal's forms.

use crate::account::Role;
use crate::input::{form_number, optional_form_number, InputError};
use serde::{Deserialize, Serialize};

/// Where seats come from: a client's pool by its pool key, or a serial's pool by the serial
/// number and its product code. On the wire it is [`PoolFields`]: `pool_key`, or `serial` with
/// `product`; a checkout's `pool()` reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRef {
    Key(String),
    Serial { product: String, serial: String },
}

/// The pool as its fields travel (see [`PoolRef`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolFields {
    /// A client's pool key (`POOL-…`); or `serial` with `product` for a serial's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

impl TryFrom<PoolFields> for PoolRef {
    type Error = InputError;

    fn try_from(f: PoolFields) -> Result<Self, InputError> {
        match (f.pool_key, f.serial, f.product) {
            (Some(k), None, _) => Ok(Self::Key(k)),
            (None, Some(serial), Some(product)) => Ok(Self::Serial { product, serial }),
            _ => Err(InputError::new(
                "pool_key",
                "Send the pool key, or the serial number with the product code.",
            )),
        }
    }
}

impl From<PoolRef> for PoolFields {
    fn from(r: PoolRef) -> Self {
        match r {
            PoolRef::Key(k) => Self {
                pool_key: Some(k),
                ..Self::default()
            },
            PoolRef::Serial { product, serial } => Self {
                pool_key: None,
                serial: Some(serial),
                product: Some(product),
            },
        }
    }
}

/// Who holds a seat, as the usage monitor shows it. A seat is per user, host and session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requester {
    /// The operating-system (or named) user.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub user: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub host: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub process: String,
    /// The machine session (terminal-server sessions are seats of their own); empty on a
    /// desktop.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub session: String,
    /// A secret the installation made once and keeps (never shown again by the server). A later
    /// checkout by the same user, host and session presenting it resumes the seat (an
    /// application restarted without releasing); without it, a live seat is never handed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 16, max_length = 255))]
    pub installation: Option<String>,
}

/// What the key selection looks at: the feature and the application's terms. A checkout's
/// terms, or a checkout to explain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatTerms {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub feature: String,
    #[serde(default)]
    pub editor: Option<String>,
    /// ConcurrentUser, NamedUser, Token or Credit; omitted: any.
    #[serde(default)]
    pub model: Option<String>,
    /// The application's release number.
    #[serde(default)]
    pub release_number: i64,
    /// The application's release date, `YYYY-MM-DD`.
    #[serde(default)]
    pub release_date: Option<String>,
    #[serde(default)]
    pub commercial_type: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub pricing_structure: Option<String>,
    /// Tokens to take from a Token key.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000))]
    pub tokens: Option<i64>,
}

/// `POST /api/v1/pools/{id}/explain`: a checkout to explain — its terms and, to judge the pool's
/// access rules too, who would ask (without a user or host, access rules are not judged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExplainRequest {
    #[serde(flatten)]
    pub terms: SeatTerms,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `POST /api/v1/seats`: a seat of a feature, for someone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckoutRequest {
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub pool: PoolFields,
    #[serde(flatten)]
    pub who: Requester,
    #[serde(flatten)]
    pub terms: SeatTerms,
}

impl CheckoutRequest {
    /// The pool asked for, or what is missing.
    pub fn pool(&self) -> Result<PoolRef, InputError> {
        self.pool.clone().try_into()
    }
}

/// A granted seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub seat_id: i64,
    /// Send it with every heartbeat and the release; it is not shown again.
    pub lease_token: String,
    pub lease_expires_at: i64,
    /// Send a heartbeat at least this often (seconds).
    pub heartbeat_secs: i64,
    pub key_id: i64,
    pub editor: String,
    pub feature: String,
    pub model: String,
    /// Features taken along by a bundle.
    #[serde(default)]
    pub bundled: Vec<String>,
}

/// A heartbeat or a release: the seat's lease token proves it is the holder's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseRequest {
    pub lease_token: String,
}

/// The answer to a heartbeat that kept the seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Beat {
    pub lease_expires_at: i64,
    pub key_id: i64,
    /// The held key expired or was superseded; the seat moved to `key_id`, silently.
    pub moved: bool,
}

/// How a seat ended. Kept with the seat (as [`ReleaseReason::stored`]) and told to its
/// application at its next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The application gave it back.
    Application,
    /// No heartbeat arrived before its lease ran out.
    LeaseExpired,
    /// An administrator, or a user of the pool's client, freed it.
    Disconnected { role: Role, user_id: i64 },
    /// Its key expired or was superseded and no other key was free; why.
    Lost(String),
    /// Its mobile licence was given back before its end.
    Returned,
    /// Its mobile licence period ended.
    BorrowEnded,
    /// Its key expired or was superseded at a heartbeat and it went on on this key (only its
    /// stretch on the old key ended; the history keeps that).
    Moved { to_key: i64 },
}

impl ReleaseReason {
    /// As the seat keeps it.
    pub fn stored(&self) -> String {
        match self {
            Self::Application => "application".into(),
            Self::LeaseExpired => "lease expired".into(),
            Self::Returned => "returned".into(),
            Self::BorrowEnded => "borrow ended".into(),
            Self::Disconnected { role, user_id } => format!("{}:{user_id}", role.as_str()),
            Self::Lost(why) => format!("lost: {why}"),
            Self::Moved { to_key } => format!("moved:{to_key}"),
        }
    }

    /// What [`ReleaseReason::stored`] wrote; `None` for anything else.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "application" => Some(Self::Application),
            "lease expired" => Some(Self::LeaseExpired),
            "returned" => Some(Self::Returned),
            "borrow ended" => Some(Self::BorrowEnded),
            _ => {
                if let Some(why) = s.strip_prefix("lost: ") {
                    return Some(Self::Lost(why.to_owned()));
                }
                if let Some(key) = s.strip_prefix("moved:") {
                    return Some(Self::Moved {
                        to_key: key.parse().ok()?,
                    });
                }
                let (role, id) = s.split_once(':')?;
                Some(Self::Disconnected {
                    role: Role::parse(role)?,
                    user_id: id.parse().ok()?,
                })
            }
        }
    }

    /// Why the seat is gone, for the person whose application held it.
    pub fn why(&self) -> String {
        match self {
            Self::Application => "it was released".into(),
            Self::LeaseExpired => "no heartbeat arrived before its lease ran out".into(),
            Self::Returned => "its mobile licence was returned".into(),
            Self::BorrowEnded => "its mobile licence period ended".into(),
            Self::Disconnected {
                role: Role::Admin, ..
            } => "an administrator disconnected it".into(),
            Self::Disconnected {
                role: Role::Client, ..
            } => "a user of your organisation disconnected it".into(),
            Self::Lost(why) => why.clone(),
            Self::Moved { to_key } => format!("it moved to key {to_key}"),
        }
    }

    /// How the seat ended, in a few words for the session history (`by` names who disconnected
    /// it, when known).
    pub fn ended_how(&self, by: Option<&str>) -> String {
        match self {
            Self::Application => "released".into(),
            Self::LeaseExpired => "lease expired".into(),
            Self::Returned => "mobile licence returned".into(),
            Self::BorrowEnded => "mobile licence ended".into(),
            Self::Disconnected { role, user_id } => match by {
                Some(name) => format!("disconnected by {name}"),
                None => format!("disconnected by {} {user_id}", role.as_str()),
            },
            Self::Lost(why) => format!("lost: {why}"),
            Self::Moved { to_key } => format!("moved to key {to_key}"),
        }
    }
}

/// A checkout to explain, as the portal's form sends it: text, empty fields not passed.
/// Fields left out count as empty; an empty feature is refused by the explanation itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainForm {
    pub feature: String,
    pub editor: String,
    pub release_number: String,
    pub release_date: String,
    pub commercial_type: String,
    pub customer_id: String,
    pub pricing_structure: String,
    pub tokens: String,
    pub user: String,
    pub host: String,
}

impl ExplainForm {
    /// The checkout a form like this describes.
    pub fn request(self) -> Result<ExplainRequest, InputError> {
        let user = given(self.user.clone());
        let host = given(self.host.clone());
        Ok(ExplainRequest {
            terms: self.terms()?,
            user,
            host,
        })
    }

    /// The terms a checkout like this would ask for.
    pub fn terms(self) -> Result<SeatTerms, InputError> {
        Ok(SeatTerms {
            release_number: form_number(
                "release_number",
                "The release number",
                &self.release_number,
                0,
            )?,
            tokens: optional_form_number("tokens", "Tokens", &self.tokens)?,
            editor: given(self.editor),
            feature: self.feature,
            release_date: given(self.release_date),
            commercial_type: given(self.commercial_type),
            customer_id: given(self.customer_id),
            pricing_structure: given(self.pricing_structure),
            model: None,
        })
    }
}

/// A form field's text as typed, or `None` when it is left empty.
fn given(raw: String) -> Option<String> {
    Some(raw).filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_checkout_travels_flat_and_comes_back() {
        let pool = PoolRef::Serial {
            product: "CALC".into(),
            serial: "S".into(),
        };
        let req = CheckoutRequest {
            pool: pool.clone().into(),
            who: Requester {
                user: "ann".into(),
                host: "ws".into(),
                process: "cad".into(),
                session: String::new(),
                installation: None,
            },
            terms: SeatTerms {
                feature: "F".into(),
                tokens: Some(2),
                ..SeatTerms::default()
            },
        };
        let v = serde_json::to_value(&req).expect("json");
        assert_eq!(v["serial"], "S");
        assert_eq!(v["user"], "ann");
        assert_eq!(v["feature"], "F");
        assert!(v.get("pool").is_none() && v.get("who").is_none(), "{v}");
        let back: CheckoutRequest = serde_json::from_value(v).expect("back");
        assert_eq!(back, req);
        assert_eq!(back.pool(), Ok(pool));
    }

    #[test]
    fn a_checkout_without_its_pool_says_what_to_send() {
        let req: CheckoutRequest = serde_json::from_value(
            json!({"serial": "S", "feature": "F", "user": "u", "host": "h", "process": "p"}),
        )
        .expect("reads");
        assert_eq!(req.pool().expect_err("no product").field, "pool_key");
    }

    #[test]
    fn release_reasons_are_kept_and_read_back() {
        for reason in [
            ReleaseReason::Application,
            ReleaseReason::LeaseExpired,
            ReleaseReason::Disconnected {
                role: Role::Client,
                user_id: 7,
            },
            ReleaseReason::Lost("its key expired".into()),
            ReleaseReason::Returned,
            ReleaseReason::BorrowEnded,
            ReleaseReason::Moved { to_key: 12 },
        ] {
            assert_eq!(ReleaseReason::from_stored(&reason.stored()), Some(reason));
        }
        assert_eq!(ReleaseReason::from_stored("admin:x"), None);
        assert_eq!(ReleaseReason::from_stored("nobody:1"), None);
        assert_eq!(ReleaseReason::from_stored("moved:x"), None);
    }
}
