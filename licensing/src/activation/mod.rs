//! Activation: binding a licence to a machine and answering with a signed activation code;
//! validation (a fresh code with whatever changed, or word that the licence is gone); removal; and
//! the offline exchange, where a request code made on the machine is answered in the portal.

mod application;
mod bind;
mod by_serial;
pub mod churn;
pub mod expiry;
mod offline;
mod removal;
mod state;

use bind::Binder;

use crate::activation::expiry::{code_start, expiry, ExpiryError};
use crate::audit::{Entry, Who};
use crate::catalog::licence_subject;
use crate::catalog::{parse_licence_key, ProductRow};
use crate::catalog::{LicenceTerms, StoredTerms, TermsEnd};
use crate::web::check_serial;
use crate::{Error, Licentia, Refusal, Result};
use protocol::account::{CurrentUser, Role};
use protocol::activation::{self as code, Claims, Request, RequestSummary};
use protocol::audit::AuditAction;
use protocol::catalog::ExpiryEdit;
use protocol::input::InputError;
use protocol::time::{day_of, format_date};
use std::collections::BTreeMap;

/// How an activation reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Online,
    /// Through the portal, answering a request code; the code carries the request's nonce. The
    /// anti-churn limit does not hold back an administrator's answer.
    Offline {
        nonce: String,
        by_admin: bool,
    },
}

impl Channel {
    /// Whether the anti-churn limit applies.
    fn enforces_churn(&self) -> bool {
        !matches!(self, Channel::Offline { by_admin: true, .. })
    }
}

/// A signed activation code and what it says.
#[derive(Debug, Clone)]
pub struct Issued {
    pub code: String,
    pub claims: Claims,
}

/// A licence's terms, as an administrator sets them.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    pub features: Vec<String>,
    pub counters: BTreeMap<String, i64>,
    pub expiry: ExpiryEdit,
}

/// Who asks for a removal: the application on its machine (end-user rules apply; its code goes
/// with it, so the licence frees at once) or someone in the portal or the management API,
/// without the machine. An administrator removes what end users may not (a limited licence, say)
/// only with `force`, so that it is never done by accident. A removal without the machine frees
/// the licence only once the machine's code can no longer pass offline, unless an administrator
/// asks to `free_now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remover<'a> {
    /// The application on its machine; `proof` is the activation code it gives up (the latest
    /// frees the licence at once, anything else waits like a removal without the machine).
    EndUser { proof: Option<&'a str> },
    Portal {
        actor: &'a CurrentUser,
        force: bool,
        free_now: bool,
    },
}

pub use protocol::catalog::Removal;

#[derive(sqlx::FromRow)]
struct LicenceState {
    id: i64,
    licence_key: String,
    /// `None` for a web licence (it belongs to a serial, not to a client's order).
    client_id: Option<i64>,
    serial_id: Option<i64>,
    #[sqlx(flatten)]
    terms: StoredTerms,
    open_ended: i64,
    activation_count: i64,
    product_id: i64,
}

#[derive(sqlx::FromRow)]
struct LiveActivation {
    id: i64,
    fingerprint: String,
    hostname: String,
    activated_at: i64,
    /// SHA-256 of the latest code issued for it.
    code_digest: Option<String>,
}

fn spent_request() -> Error {
    Error::refused(
        "This request code was answered before and that activation has since been removed: make \
         a new request code on the machine."
            .into(),
    )
}

enum LicenceBy<'a> {
    Key(&'a str),
    Id(i64),
}

/// "2 days", "3 hours", "5 minutes", "40 seconds", rounded up.
fn duration_words(secs: i64) -> String {
    let (n, unit) = if secs >= 2 * 86_400 {
        ((secs + 86_399) / 86_400, "day")
    } else if secs >= 2 * 3600 {
        ((secs + 3599) / 3600, "hour")
    } else if secs >= 120 {
        ((secs + 59) / 60, "minute")
    } else {
        (secs.max(1), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub(crate) fn hostname(raw: &str) -> Result<String, InputError> {
    protocol::input::text_line(
        "hostname",
        raw,
        1..=255,
        "The host name must be 1 to 255 printable characters.",
    )
}

pub(crate) fn fingerprint(raw: &str) -> Result<String, InputError> {
    let f = raw.trim().to_lowercase();
    if !code::is_fingerprint(&f) {
        return Err(InputError::new(
            "fingerprint",
            "The machine fingerprint must be 64 hexadecimal digits (as the client library makes it).",
        ));
    }
    Ok(f)
}

#[derive(sqlx::FromRow)]
struct WebSerial {
    id: i64,
    serial: String,
    revoked_at: Option<i64>,
    product_code: String,
    replaced_by: Option<String>,
}
