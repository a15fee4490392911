//! The one error vocabulary of every boundary: each kind of problem has its HTTP status, its
//! RFC 9457 problem `type` and title, decided here once. The Web API writes them as
//! `application/problem+json`, the portal gives its server functions the same statuses, and the
//! client library reads the `type` back into the same enum, so an application can tell "all
//! seats are taken, retry later" from "no key fits this release, don't".

use serde::{Deserialize, Serialize};

/// What went wrong, as an application can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The request could not be read (malformed JSON, a parameter of the wrong type).
    BadRequest,
    /// No valid credentials (management endpoints, the portal's session).
    Unauthorized,
    /// The caller may not do this (another client's data, an administrator's action).
    Forbidden,
    /// A read-only token tried to change something.
    ReadOnlyToken,
    /// A licensing rule refuses; the detail says which and what to do.
    Refused,
    /// Floating: every seat of the feature is in use. Retry later.
    SeatsTaken,
    /// Floating: no key of the pool fits the feature, release, dates or terms. Retrying will
    /// not help; the administrator can explain the choice.
    NoMatchingKey,
    /// The licence was activated the most times it allows.
    ActivationLimit,
    /// Mobile licences (borrowing) are off for this pool or its product.
    BorrowingOff,
    /// Floating: an access rule of the pool (allow or deny) refuses this user or machine the
    /// feature; the detail names the rule. Retrying will not help; the pool's owner can.
    AccessRule,
    NotFound,
    Conflict,
    /// The licence is bound to another machine; remove it there first.
    ActivatedElsewhere,
    /// What the request is about was removed, expired or has ended.
    Gone,
    /// The serial number was revoked: activate again with its replacement.
    SerialRevoked,
    /// The code was signed with a key the vendor has withdrawn: activate again on this machine
    /// (it uses no further activation) for a code signed with a current key.
    KeyRetired,
    /// Floating: the pool key was replaced and its grace period is over: ask the pool's owner
    /// for the new one.
    PoolKeyReplaced,
    /// Floating: the seat went back to the pool when its lease ran out unheard (the network
    /// was down, the machine asleep). Checking out again may get a seat at once; the client
    /// library does so by itself.
    LeaseExpired,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// The input breaks a rule; `field` names the field.
    Invalid,
    /// Too many activations and removals of a licence lately (anti-churn); retry after the wait.
    ChurnLimit,
    /// Too many failed sign-ins, or requests; retry after the wait.
    Throttled,
    /// Something failed on the server; it has been logged.
    Internal,
    /// The server cannot reach its database for a moment (a restart, a failover, a lock held
    /// too long); `Retry-After` says when to try again, here or at another server.
    Unavailable,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 24] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::ReadOnlyToken,
        Self::Refused,
        Self::SeatsTaken,
        Self::NoMatchingKey,
        Self::ActivationLimit,
        Self::BorrowingOff,
        Self::AccessRule,
        Self::NotFound,
        Self::Conflict,
        Self::ActivatedElsewhere,
        Self::Gone,
        Self::SerialRevoked,
        Self::KeyRetired,
        Self::PoolKeyReplaced,
        Self::LeaseExpired,
        Self::UnsupportedMediaType,
        Self::Invalid,
        Self::ChurnLimit,
        Self::Throttled,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The HTTP status answers of this kind carry.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden
            | Self::ReadOnlyToken
            | Self::Refused
            | Self::SeatsTaken
            | Self::NoMatchingKey
            | Self::ActivationLimit
            | Self::BorrowingOff
            | Self::AccessRule => 403,
            Self::NotFound => 404,
            Self::Conflict | Self::ActivatedElsewhere => 409,
            Self::Gone
            | Self::SerialRevoked
            | Self::KeyRetired
            | Self::PoolKeyReplaced
            | Self::LeaseExpired => 410,
            Self::UnsupportedMediaType => 415,
            Self::Invalid => 422,
            Self::ChurnLimit | Self::Throttled => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The kind's name in problem `type`s: `seats-taken`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::ReadOnlyToken => "read-only-token",
            Self::Refused => "refused",
            Self::SeatsTaken => "seats-taken",
            Self::NoMatchingKey => "no-matching-key",
            Self::ActivationLimit => "activation-limit",
            Self::BorrowingOff => "borrowing-off",
            Self::AccessRule => "access-rule",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::ActivatedElsewhere => "activated-elsewhere",
            Self::Gone => "gone",
            Self::SerialRevoked => "serial-revoked",
            Self::KeyRetired => "key-retired",
            Self::PoolKeyReplaced => "pool-key-replaced",
            Self::LeaseExpired => "lease-expired",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Invalid => "invalid",
            Self::ChurnLimit => "churn-limit",
            Self::Throttled => "throttled",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The problem `type`: `/problems/seats-taken`.
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug())
    }

    /// The kind a problem `type` names, if it is one of ours.
    pub fn from_type_uri(uri: &str) -> Option<Self> {
        let slug = uri.strip_prefix("/problems/")?;
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// A short, fixed title for the kind.
    pub fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "The request could not be read",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::ReadOnlyToken => "Read-only token",
            Self::Refused => "Refused",
            Self::SeatsTaken => "All seats are in use",
            Self::NoMatchingKey => "No licence key fits",
            Self::ActivationLimit => "Activation limit reached",
            Self::BorrowingOff => "Mobile licences are off",
            Self::AccessRule => "An access rule of the pool refuses",
            Self::NotFound => "Not found",
            Self::Conflict => "Conflict",
            Self::ActivatedElsewhere => "Activated on another machine",
            Self::Gone => "Gone",
            Self::SerialRevoked => "Serial number revoked",
            Self::KeyRetired => "Signing key withdrawn",
            Self::PoolKeyReplaced => "Pool key replaced",
            Self::LeaseExpired => "Lease expired",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Invalid => "Invalid input",
            Self::ChurnLimit => "Too many activations and removals",
            Self::Throttled => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }

    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::SeatsTaken
                | Self::ChurnLimit
                | Self::Throttled
                | Self::Internal
                | Self::Unavailable
        )
    }
}

/// An RFC 9457 problem, as the Web API writes it and the client library reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI reference naming the kind of problem, such as `/problems/seats-taken`
    /// (`about:blank` when a problem from elsewhere names none: its status says it all).
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    /// What went wrong and what to do, for people.
    #[serde(default)]
    pub detail: String,
    /// The input field the problem is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before trying again (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

fn about_blank() -> String {
    "about:blank".into()
}

impl Problem {
    /// A problem that says only its status (an answer that was not problem+json).
    pub fn from_status(status: u16) -> Self {
        Self {
            kind: about_blank(),
            title: String::new(),
            status,
            detail: String::new(),
            field: None,
            retry_after: None,
        }
    }

    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The kind its `type` names; a problem from elsewhere falls back on its status.
    pub fn kind(&self) -> ProblemKind {
        ProblemKind::from_type_uri(&self.kind).unwrap_or(match self.status {
            401 => ProblemKind::Unauthorized,
            403 => ProblemKind::Refused,
            404 => ProblemKind::NotFound,
            409 => ProblemKind::Conflict,
            410 => ProblemKind::Gone,
            415 => ProblemKind::UnsupportedMediaType,
            422 => ProblemKind::Invalid,
            429 => ProblemKind::Throttled,
            // Any other refusal of the request: not something waiting fixes.
            400..=499 => ProblemKind::BadRequest,
            502..=504 => ProblemKind::Unavailable,
            _ => ProblemKind::Internal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_type_and_comes_back_from_it() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in ProblemKind::ALL {
            assert!(seen.insert(kind.slug()), "{kind:?} shares its type");
            assert_eq!(ProblemKind::from_type_uri(&kind.type_uri()), Some(kind));
            let p = Problem::new(kind, "x");
            assert_eq!((p.kind(), p.status), (kind, kind.status()));
            let json = serde_json::to_string(&p).expect("json");
            let back: Problem = serde_json::from_str(&json).expect("back");
            assert_eq!(back, p);
        }
        assert_eq!(ProblemKind::from_type_uri("/problems/nonsense"), None);
        assert_eq!(ProblemKind::from_type_uri("seats-taken"), None);
    }

    #[test]
    fn a_minimal_problem_from_elsewhere_reads_too() {
        let p: Problem =
            serde_json::from_str(r#"{"status":404,"title":"Not Found"}"#).expect("json");
        assert_eq!(
            (p.kind(), p.title.as_str()),
            (ProblemKind::NotFound, "Not Found")
        );
        assert_eq!(Problem::from_status(418).kind(), ProblemKind::BadRequest);
        assert_eq!(Problem::from_status(500).kind(), ProblemKind::Internal);
        // A proxy's answer for a server away is an outage, not a failure of the request.
        for status in [502, 503, 504] {
            assert_eq!(
                Problem::from_status(status).kind(),
                ProblemKind::Unavailable
            );
        }
    }

    #[test]
    fn a_foreign_problem_is_read_by_its_status() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"https://example.com/x","title":"t","status":410,"detail":"d"}"#,
        )
        .expect("json");
        assert_eq!(p.kind(), ProblemKind::Gone);
    }

    #[test]
    fn only_waiting_kinds_are_transient() {
        assert!(ProblemKind::SeatsTaken.is_transient());
        assert!(!ProblemKind::NoMatchingKey.is_transient());
        assert!(!ProblemKind::ActivationLimit.is_transient());
    }
}
