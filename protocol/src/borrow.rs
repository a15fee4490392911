//! Mobile (borrowed) licences: a floating seat taken out of the pool for a fixed period, so that
//! its machine can work without the server. The server answers a *borrow token*, a JWS signed
//! with the same keys as activation codes (its own `typ`), bound to the machine's fingerprint,
//! the feature, the key's terms and the end of the period. The seat counts as in use until that
//! end or an early return; the lease reclaimer gives it back at the end.
//!
//! A workstation that cannot reach the server borrows by code exchange: it makes a borrow request
//! code, a licence administrator answers it in the portal with the token itself, and the
//! workstation imports it. An early return by code is a return code the portal takes.

use crate::activation::{code_digest, decode_text, encode_text, RequestError};
use serde::{Deserialize, Serialize};

/// The `typ` of a borrow token's protected header.
pub const BORROW_TYPE: &str = "licentia-borrow+jwt";

/// A day, in seconds.
pub const DAY_SECS: i64 = 86_400;

/// What a borrow token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BorrowClaims {
    /// The server that issued it.
    pub iss: String,
    /// The borrowed seat, which names the borrow: an extension keeps it.
    pub seat: i64,
    pub pool: i64,
    /// The machine's fingerprint for the application's product.
    pub fp: String,
    pub host: String,
    pub user: String,
    pub editor: String,
    pub feature: String,
    /// The key's licence model.
    pub model: String,
    /// Features taken along by a bundle.
    #[serde(default)]
    pub bundled: Vec<String>,
    /// The key's highest release number (0: any) and release date, as the application checks.
    pub max_release: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_release_date: Option<String>,
    /// Unix seconds: signed at; the borrowed seat returns to the pool at `exp`.
    pub iat: i64,
    pub exp: i64,
    /// The nonce of the borrow request code this token answers, if it answers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<String>,
}

/// Borrowing a held seat, or extending its borrow: the lease token proves the seat is the
/// caller's, the fingerprint names the machine the token will be bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BorrowRequest {
    pub lease_token: String,
    /// The machine's fingerprint (64 hexadecimal digits, as the client library makes it).
    pub fingerprint: String,
    /// Borrow: for how many days from now. Extend: by how many days past the current end.
    pub days: i64,
    /// Borrow: [`secret_hash`] of a secret the machine keeps; returning the seat early needs
    /// the secret itself, so no one who merely saw the token (or the lease token) can. Not used
    /// by an extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_hash: Option<String>,
}

/// An early return, online: the lease token and the secret whose hash the borrow named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnRequest {
    pub lease_token: String,
    pub return_secret: String,
}

/// A borrowed seat: the signed token and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Borrowed {
    pub borrow_token: String,
    pub claims: BorrowClaims,
}

/// The mobile licence settings as the portal's form sends them: a checkbox (present when
/// ticked) and the longest borrowing as text (empty: the product's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MobileForm {
    pub allowed: Option<String>,
    pub max_borrow_days: String,
}

impl MobileForm {
    pub fn settings(&self) -> Result<MobileSettings, crate::input::InputError> {
        let text = self.max_borrow_days.trim();
        let max_borrow_days = if text.is_empty() {
            None
        } else {
            Some(text.parse::<i64>().ok().filter(|d| (0..=3650).contains(d)).ok_or_else(|| {
                crate::input::InputError::new(
                    "max_borrow_days",
                    "The longest borrowing is a number of days from 0 (none) to 3650, or empty (the product's).",
                )
            })?)
        };
        Ok(MobileSettings {
            allowed: self.allowed.is_some(),
            max_borrow_days,
        })
    }
}

/// *Assign a mobile licence*: a workstation's borrow request code, answered for `days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssignMobile {
    pub request_code: String,
    pub days: i64,
}

/// *Extend mobile licence*: by how many days past its current end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MobileExtension {
    pub days: i64,
}

/// *Release a mobile licence*: the return code the workstation made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MobileReturn {
    pub return_code: String,
}

/// Why a borrowing period is refused (as a sentence for the person asking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("Mobile licences of this pool last at most {max} days: ask for 1 to {max}.")]
    OutOfRange { max: i64 },
    #[error(
        "An extension may not take the borrow more than {max} days ahead: it can be extended by \
         {room} days at most now."
    )]
    PastMaximum { max: i64, room: i64 },
    #[error("The licence key ends before the borrow would: it can be borrowed until {0} at most.")]
    KeyEnds(String),
}

/// The end of a borrow of `days` starting `now`, for a pool whose borrows last at most
/// `max_days`; `key_end` is the last second the seat's key is valid, if it ends.
pub fn borrow_end(
    now: i64,
    days: i64,
    max_days: i64,
    key_end: Option<i64>,
) -> Result<i64, PeriodError> {
    if !(1..=max_days).contains(&days) {
        return Err(PeriodError::OutOfRange { max: max_days });
    }
    within_key(now + days * DAY_SECS, key_end)
}

/// The end of a borrow ending at `current_end` extended by `days`: never more than `max_days`
/// ahead of `now`, so a borrow can be kept going but never held further ahead than the pool
/// allows.
pub fn extended_end(
    now: i64,
    current_end: i64,
    days: i64,
    max_days: i64,
    key_end: Option<i64>,
) -> Result<i64, PeriodError> {
    let limit = now + max_days * DAY_SECS;
    let room = ((limit - current_end) / DAY_SECS).max(0);
    if days < 1 {
        return Err(PeriodError::PastMaximum {
            max: max_days,
            room,
        });
    }
    let end = current_end.saturating_add(days.saturating_mul(DAY_SECS));
    if end > limit {
        return Err(PeriodError::PastMaximum {
            max: max_days,
            room,
        });
    }
    within_key(end, key_end)
}

fn within_key(end: i64, key_end: Option<i64>) -> Result<i64, PeriodError> {
    match key_end {
        Some(k) if end > k => Err(PeriodError::KeyEnds(crate::time::format_utc(k))),
        _ => Ok(end),
    }
}

/// Why a pool lends no mobile licence now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LendingOff {
    #[error("the pool's owner has switched mobile licences off for this pool")]
    SwitchedOff,
    #[error("an administrator has switched mobile licences off for this pool")]
    NoneByAdministrator,
    #[error("the product of this pool's serial does not allow borrowing")]
    ProductForbids,
    #[error("no longest borrowing is set for this pool: an administrator sets one")]
    NotSet,
}

/// The longest borrowing (days) a pool allows now: the owner's switch first, then an
/// administrator's setting for the pool (0: none), else the product of its serial (`product`:
/// whether it allows borrowing, and for how long), else nothing.
pub fn lending(
    mobile_allowed: bool,
    pool_max_days: Option<i64>,
    product: Option<(bool, i64)>,
) -> Result<i64, LendingOff> {
    if !mobile_allowed {
        return Err(LendingOff::SwitchedOff);
    }
    match (pool_max_days, product) {
        (Some(0), _) => Err(LendingOff::NoneByAdministrator),
        (Some(days), _) => Ok(days),
        (None, Some((true, days))) => Ok(days),
        (None, Some((false, _))) => Err(LendingOff::ProductForbids),
        (None, None) => Err(LendingOff::NotSet),
    }
}

/// A pool's mobile licence settings: the owner's switch ("Allow the mobile licence
/// conversion"; the pool's client users and administrators) and the longest borrowing an
/// administrator sets for it (`null`: its serial's product decides; 0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MobileSettings {
    pub allowed: bool,
    #[serde(default)]
    pub max_borrow_days: Option<i64>,
}

const BORROW_REQUEST_PREFIX: &str = "LBQ1-";
const RETURN_PREFIX: &str = "LBT1-";

/// A workstation's request for a mobile licence, made offline and pasted into the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BorrowRequestCode {
    /// [`pool_digest`] of the pool the workstation checks out of: the code names its pool
    /// without carrying the pool key (it travels by e-mail).
    pub pool: String,
    pub feature: String,
    /// The application's release number (0: unknown).
    #[serde(default)]
    pub release: i64,
    /// For how many days the workstation asks.
    pub days: i64,
    pub fp: String,
    pub host: String,
    pub user: String,
    /// Random, chosen by the workstation; the answer carries it back.
    pub nonce: String,
    /// [`secret_hash`] of the secret an early return will show.
    pub return_hash: String,
    /// Unix seconds when the request was made (the workstation's clock).
    pub t: i64,
}

impl BorrowRequestCode {
    pub fn encode(&self) -> String {
        encode_text(BORROW_REQUEST_PREFIX, self)
    }

    pub fn decode(code: &str) -> Result<Self, RequestError> {
        decode_text(BORROW_REQUEST_PREFIX, "borrow request code", code)
    }
}

/// A workstation's word that it gave a mobile licence back early: made by the client library,
/// which deletes the token first, and pasted into the portal, which returns the seat at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnCode {
    pub seat: i64,
    pub fp: String,
    /// The secret whose [`secret_hash`] the borrow named: the machine's word, which neither the
    /// token nor the portal shows.
    pub secret: String,
    /// Unix seconds when it was given back (the workstation's clock).
    pub t: i64,
}

impl ReturnCode {
    pub fn encode(&self) -> String {
        encode_text(RETURN_PREFIX, self)
    }

    pub fn decode(code: &str) -> Result<Self, RequestError> {
        decode_text(RETURN_PREFIX, "return code", code)
    }
}

/// What names a pool in a borrow request code: SHA-256 (hex) of its pool key (upper case), or
/// of the product code and serial number of a serial's pool.
/// How long a borrow request code may wait for its answer, in days: an older one is refused
/// (make a new one on the machine). The server keeps the answered ones longer than this, so a
/// code answered twice gets the same answer, never a second seat.
pub const REQUEST_CODE_DAYS: i64 = 30;

/// Whether a request code made at `made` (the workstation's clock) is too old at `now`.
pub fn request_code_stale(made: i64, now: i64) -> bool {
    made < now.saturating_sub(REQUEST_CODE_DAYS * DAY_SECS)
}

pub fn pool_digest(pool_key: Option<&str>, product_serial: Option<(&str, &str)>) -> String {
    match (pool_key, product_serial) {
        (Some(key), _) => code_digest(&format!("pool\0{}", key.trim().to_uppercase())),
        (None, Some((product, serial))) => {
            // However the serial was typed, as the server reads it: its letters and digits, in
            // upper case, O read as 0 and I or L as 1.
            let serial: String = serial
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| match c.to_ascii_uppercase() {
                    'O' => '0',
                    'I' | 'L' => '1',
                    c => c,
                })
                .collect();
            code_digest(&format!("serial\0{}\0{serial}", product.trim()))
        }
        (None, None) => String::new(),
    }
}

/// SHA-256 of a return secret (hex), as a borrow names it.
pub fn secret_hash(secret: &str) -> String {
    code_digest(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_code_waits_thirty_days_at_most() {
        let now = 100 * DAY_SECS;
        assert!(!request_code_stale(now - 30 * DAY_SECS, now));
        assert!(request_code_stale(now - 30 * DAY_SECS - 1, now));
        // A workstation clock ahead of the server's is not refused for it.
        assert!(!request_code_stale(now + DAY_SECS, now));
    }
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_borrow_lasts_the_days_asked_up_to_the_maximum() {
        assert_eq!(borrow_end(NOW, 3, 30, None), Ok(NOW + 3 * DAY_SECS));
        assert_eq!(borrow_end(NOW, 30, 30, None), Ok(NOW + 30 * DAY_SECS));
        assert_eq!(
            borrow_end(NOW, 31, 30, None),
            Err(PeriodError::OutOfRange { max: 30 })
        );
        assert_eq!(
            borrow_end(NOW, 0, 30, None),
            Err(PeriodError::OutOfRange { max: 30 })
        );
        assert!(matches!(
            borrow_end(NOW, 5, 30, Some(NOW + 2 * DAY_SECS)),
            Err(PeriodError::KeyEnds(_))
        ));
    }

    #[test]
    fn an_extension_stays_within_the_maximum_ahead_of_now() {
        let end = NOW + 10 * DAY_SECS;
        assert_eq!(
            extended_end(NOW, end, 20, 30, None),
            Ok(NOW + 30 * DAY_SECS)
        );
        assert_eq!(
            extended_end(NOW, end, 21, 30, None),
            Err(PeriodError::PastMaximum { max: 30, room: 20 })
        );
        // Later on, the same borrow can be kept going.
        let later = NOW + 9 * DAY_SECS;
        assert_eq!(
            extended_end(later, end, 29, 30, None),
            Ok(end + 29 * DAY_SECS)
        );
        assert!(extended_end(NOW, end, 0, 30, None).is_err());
    }

    #[test]
    fn codes_round_trip_and_refuse_each_other() {
        let r = BorrowRequestCode {
            pool: pool_digest(Some("POOL-A"), None),
            feature: "F".into(),
            release: 3,
            days: 5,
            fp: "ab".repeat(32),
            host: "ws".into(),
            user: "ann".into(),
            nonce: "n".into(),
            return_hash: secret_hash("s"),
            t: NOW,
        };
        assert_eq!(BorrowRequestCode::decode(&r.encode()), Ok(r.clone()));
        let back = ReturnCode {
            seat: 1,
            fp: "ab".repeat(32),
            secret: "s".into(),
            t: NOW,
        };
        assert_eq!(ReturnCode::decode(&back.encode()), Ok(back.clone()));
        assert!(ReturnCode::decode(&r.encode()).is_err());
        assert!(BorrowRequestCode::decode(&back.encode()).is_err());
    }

    #[test]
    fn the_owner_switch_comes_first_then_the_pool_then_the_product() {
        assert_eq!(
            lending(false, Some(9), Some((true, 5))),
            Err(LendingOff::SwitchedOff)
        );
        assert_eq!(lending(true, Some(9), Some((false, 5))), Ok(9));
        assert_eq!(
            lending(true, Some(0), Some((true, 5))),
            Err(LendingOff::NoneByAdministrator)
        );
        assert_eq!(lending(true, None, Some((true, 5))), Ok(5));
        assert_eq!(
            lending(true, None, Some((false, 5))),
            Err(LendingOff::ProductForbids)
        );
        assert_eq!(lending(true, None, None), Err(LendingOff::NotSet));
    }

    proptest! {
        #[test]
        fn no_borrow_or_extension_ends_past_the_maximum(
            now in 0i64..4_000_000_000,
            days in -5i64..100,
            max in 1i64..60,
            ahead in 0i64..(60 * DAY_SECS),
        ) {
            if let Ok(end) = borrow_end(now, days, max, None) {
                prop_assert!(end > now && end <= now + max * DAY_SECS);
            }
            if let Ok(end) = extended_end(now, now + ahead, days, max, None) {
                prop_assert!(end > now + ahead && end <= now + max * DAY_SECS);
            }
        }
    }
}
