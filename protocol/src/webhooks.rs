//! Webhooks: the vendor's own systems told of events as they happen (a licence created, an
//! activation made or removed, a seat refused, a serial revoked), by an HTTP POST of JSON signed
//! with a secret only the vendor and the server know.

use crate::input::InputError;
use serde::{Deserialize, Serialize};

/// What a webhook can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookEvent {
    /// Licences were made: an order's, one each.
    #[serde(rename = "licence.created")]
    LicenceCreated,
    /// A machine activated a licence (online, offline or by serial).
    #[serde(rename = "activation.created")]
    ActivationCreated,
    /// An activation was removed (by its machine, a user or an administrator).
    #[serde(rename = "activation.removed")]
    ActivationRemoved,
    /// A checkout was refused for want of a seat or a fitting key.
    #[serde(rename = "seat.refused")]
    SeatRefused,
    /// A serial was revoked (and reissued).
    #[serde(rename = "serial.revoked")]
    SerialRevoked,
    /// A licence's last day has passed (once per licence and end date: extended, then past its
    /// new end, it is told again).
    #[serde(rename = "licence.expired")]
    LicenceExpired,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 6] = [
        WebhookEvent::LicenceCreated,
        WebhookEvent::LicenceExpired,
        WebhookEvent::ActivationCreated,
        WebhookEvent::ActivationRemoved,
        WebhookEvent::SeatRefused,
        WebhookEvent::SerialRevoked,
    ];

    pub fn code(self) -> &'static str {
        match self {
            WebhookEvent::LicenceCreated => "licence.created",
            WebhookEvent::ActivationCreated => "activation.created",
            WebhookEvent::ActivationRemoved => "activation.removed",
            WebhookEvent::SeatRefused => "seat.refused",
            WebhookEvent::SerialRevoked => "serial.revoked",
            WebhookEvent::LicenceExpired => "licence.expired",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code.trim())
    }

    /// In the portal's words.
    pub fn describe(self) -> &'static str {
        match self {
            WebhookEvent::LicenceCreated => "a licence is created",
            WebhookEvent::ActivationCreated => "a machine activates a licence",
            WebhookEvent::ActivationRemoved => "an activation is removed",
            WebhookEvent::SeatRefused => "a floating checkout is refused",
            WebhookEvent::SerialRevoked => "a serial is revoked",
            WebhookEvent::LicenceExpired => "a licence reaches its end",
        }
    }
}

/// A webhook as an administrator registers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookInput {
    /// Where the events are POSTed: `https://…` (or `http://…`).
    pub url: String,
    /// The events it is told of (codes such as `activation.created`); at least one.
    pub events: Vec<String>,
}

/// A webhook input, checked: the URL and the events, sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidWebhook {
    pub url: String,
    pub events: Vec<WebhookEvent>,
}

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2000;

impl WebhookInput {
    pub fn check(&self) -> Result<ValidWebhook, InputError> {
        let url = self.url.trim();
        check_url(url)?;
        let mut events = Vec::new();
        for code in &self.events {
            let e = WebhookEvent::parse(code).ok_or_else(|| {
                InputError::new(
                    "events",
                    format!(
                        "There is no event \u{201c}{}\u{201d}: choose from {}.",
                        code.trim(),
                        WebhookEvent::ALL.map(WebhookEvent::code).join(", ")
                    ),
                )
            })?;
            events.push(e);
        }
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(InputError::new("events", "Choose at least one event."));
        }
        Ok(ValidWebhook {
            url: url.to_owned(),
            events,
        })
    }
}

/// An `http://` or `https://` URL (any case) with a host and no user name or password, as
/// the WHATWG URL rules read it (so `http://2130706433/` is read as the address it is).
fn check_url(url: &str) -> Result<(), InputError> {
    let bad = |why: &str| Err(InputError::new("url", why));
    if url.len() > MAX_URL_LEN {
        return bad("The URL is longer than 2,000 characters.");
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return bad("The URL is not readable: write it as https://hooks.example.com/path.");
    };
    if !matches!(parsed.scheme(), "https" | "http") {
        return bad("The URL starts with https:// (or http://).");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad(
            "The URL may not carry a user name or password: the signature proves the sender.",
        );
    }
    match parsed.host() {
        None => bad("The URL needs a host name such as hooks.example.com."),
        Some(url::Host::Domain(d))
            if d.is_empty()
                || d.split('.')
                    .any(|label| label.is_empty() || label.starts_with('-')) =>
        {
            bad("The URL needs a host name such as hooks.example.com.")
        }
        Some(_) if parsed.port() == Some(0) => bad("The URL's port is a number from 1 to 65535."),
        Some(_) => Ok(()),
    }
}

/// A registered webhook (its secret is shown once, when it is made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: i64,
    /// Deliveries waiting (to be sent, or retried).
    pub pending: i64,
    /// Deliveries given up after every retry failed.
    pub failed: i64,
}

/// A new webhook and the secret its deliveries are signed with (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    pub webhook: Webhook,
    /// `whsec_…`: the HMAC-SHA256 key of the `Licentia-Signature` header.
    pub secret: String,
}

/// One event sent (or to be sent) to one webhook, with the last answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    /// The JSON body sent.
    pub payload: String,
    pub created_at: i64,
    pub attempts: i64,
    pub last_attempt_at: Option<i64>,
    /// The receiver's HTTP status, or none when it could not be reached.
    pub last_status: Option<i64>,
    /// The start of the receiver's answer, or why it could not be reached.
    pub last_answer: Option<String>,
    pub delivered_at: Option<i64>,
    /// Given up after the last retry failed.
    pub failed_at: Option<i64>,
    /// When it is tried next (none once delivered or given up).
    pub next_attempt_at: Option<i64>,
}

/// How long after failed attempt `attempt` (1, 2, …) the next one is made, in seconds; `None`:
/// give up. 30 s, 2 min, 10 min, 1 h, 3 h, 6 h, 12 h: eight attempts over about 22 hours.
pub fn retry_after(attempt: i64) -> Option<i64> {
    usize::try_from(attempt - 1)
        .ok()
        .and_then(|i| WAITS.get(i).copied())
}

const WAITS: [i64; 7] = [30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600];

/// The most attempts a delivery gets: the first and one after each wait.
pub const MAX_ATTEMPTS: i64 = WAITS.len() as i64 + 1;

/// The header a receiver checks: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "Licentia-Signature";

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str, events: &[&str]) -> WebhookInput {
        WebhookInput {
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn a_webhook_names_a_web_address_and_known_events() {
        let ok = input(
            " https://hooks.example.com:8443/licentia?x=1 ",
            &["seat.refused", "activation.created", "seat.refused"],
        )
        .check()
        .expect("valid");
        assert_eq!(ok.url, "https://hooks.example.com:8443/licentia?x=1");
        assert_eq!(
            ok.events,
            [WebhookEvent::ActivationCreated, WebhookEvent::SeatRefused]
        );
        assert!(input("http://[::1]:9000/h", &["serial.revoked"])
            .check()
            .is_ok());
        assert!(input("HTTPS://X.test/h", &["serial.revoked"])
            .check()
            .is_ok());
        for bad in [
            "ftp://x.test/",
            "https://",
            "https://user:pw@x.test/",
            "https://x.test:0/",
            "https://x.test:99999/",
            "https://x .test/",
            "http://[::1]junk/",
            "https://./",
            "https://-x.test/",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                input(bad, &["seat.refused"]).check().map_err(|e| e.field),
                Err("url"),
                "{bad}"
            );
        }
        assert_eq!(
            input("https://x.test", &[]).check().map_err(|e| e.field),
            Err("events")
        );
        assert_eq!(
            input("https://x.test", &["seat.taken"])
                .check()
                .map_err(|e| e.field),
            Err("events")
        );
        let long = format!("https://x.test/{}", "a".repeat(MAX_URL_LEN));
        assert!(input(&long, &["seat.refused"]).check().is_err());
    }

    #[test]
    fn retries_back_off_and_end_after_eight_attempts() {
        assert_eq!(retry_after(1), Some(30));
        assert_eq!(retry_after(2), Some(120));
        assert_eq!(retry_after(7), Some(12 * 3600));
        assert_eq!(retry_after(MAX_ATTEMPTS), None);
        assert_eq!(retry_after(0), None);
        let total: i64 = (1..MAX_ATTEMPTS).filter_map(retry_after).sum();
        assert!(total < 24 * 3600, "{total}");
        for e in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(e.code()), Some(e));
            assert_eq!(
                serde_json::to_string(&e).expect("json"),
                format!("\"{}\"", e.code())
            );
        }
    }
}
