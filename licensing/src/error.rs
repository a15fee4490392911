//! The domain's error type. Each variant is something a caller can act on; database and internal
//! failures carry their cause for the log, and the boundaries show only a generic message for them.

use protocol::input::InputError;
use protocol::problem::ProblemKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InputError),
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The request is understood but the rules refuse it; the message says why and what to do,
    /// the refusal which rule (so that an application can tell waiting from giving up).
    #[error("{1}")]
    Refused(Refusal, String),
    /// The licence is bound to another machine.
    #[error("{0}")]
    ActivatedElsewhere(String),
    /// What the request is about no longer exists or has ended (a removed activation, an expired
    /// licence).
    #[error("{0}")]
    Gone(String),
    #[error("you are not signed in")]
    NotSignedIn,
    #[error("you are not allowed to do this")]
    NotAllowed,
    #[error("wrong e-mail address or password")]
    BadCredentials,
    /// Too many activations or removals of one licence (anti-churn); retry after the wait.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: i64,
    },
    /// The serial number was revoked: the application must activate again with its replacement.
    #[error("{0}")]
    Revoked(String),
    /// The code was signed with a key the vendor withdrew: the application activates again.
    #[error("{0}")]
    KeyRetired(String),
    /// The pool key was replaced and its grace period is over.
    #[error("{0}")]
    PoolKeyReplaced(String),
    /// The seat went back to the pool when its lease ran out unheard.
    #[error("{0}")]
    LeaseExpired(String),
    /// Too many requests of one kind (checkouts from one address): retry after the wait.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: i64,
    },
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    /// Every slot for password hashing is taken (a burst of sign-ins): retry after the wait.
    #[error("the server is busy checking passwords; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: i64 },
    #[error("this setup link is not valid: {0}")]
    SetupLink(&'static str),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot be reached for now (a restart, a connection cut, a lock held past
    /// the busy timeout): the same request may succeed in a few seconds.
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A rule of the product, the licence or the caller's role; the message names it.
    Rule,
    /// Every seat of the feature is in use: a later checkout may succeed.
    SeatsTaken,
    /// No key of the pool fits the feature, release, dates or terms.
    NoMatchingKey,
    /// The licence (or serial) has no activation left.
    ActivationLimit,
    /// Mobile licences are off for the pool (its owner's choice) or its product.
    BorrowingOff,
    /// An allow or deny rule of the pool refuses the asker; the message names it.
    AccessRule,
}

impl Error {
    /// A rule's refusal with its message.
    pub(crate) fn refused(message: String) -> Self {
        Error::Refused(Refusal::Rule, message)
    }

    /// The kind of problem this is at every boundary (its HTTP status and problem type).
    pub fn kind(&self) -> ProblemKind {
        match self {
            Error::Invalid(_) => ProblemKind::Invalid,
            Error::NotFound(_) => ProblemKind::NotFound,
            Error::Conflict(_) => ProblemKind::Conflict,
            Error::Refused(Refusal::Rule, _) => ProblemKind::Refused,
            Error::Refused(Refusal::SeatsTaken, _) => ProblemKind::SeatsTaken,
            Error::Refused(Refusal::NoMatchingKey, _) => ProblemKind::NoMatchingKey,
            Error::Refused(Refusal::ActivationLimit, _) => ProblemKind::ActivationLimit,
            Error::Refused(Refusal::BorrowingOff, _) => ProblemKind::BorrowingOff,
            Error::Refused(Refusal::AccessRule, _) => ProblemKind::AccessRule,
            Error::ActivatedElsewhere(_) => ProblemKind::ActivatedElsewhere,
            Error::Gone(_) | Error::SetupLink(_) => ProblemKind::Gone,
            Error::Revoked(_) => ProblemKind::SerialRevoked,
            Error::KeyRetired(_) => ProblemKind::KeyRetired,
            Error::PoolKeyReplaced(_) => ProblemKind::PoolKeyReplaced,
            Error::LeaseExpired(_) => ProblemKind::LeaseExpired,
            Error::NotSignedIn | Error::BadCredentials => ProblemKind::Unauthorized,
            Error::NotAllowed => ProblemKind::Forbidden,
            Error::RateLimited { .. } => ProblemKind::ChurnLimit,
            Error::Throttled { .. } | Error::Busy { .. } | Error::TooManyRequests { .. } => {
                ProblemKind::Throttled
            }
            Error::Database(_) | Error::Internal(_) => ProblemKind::Internal,
            Error::Unavailable(_) => ProblemKind::Unavailable,
        }
    }

    /// Maps a unique-constraint violation to a `Conflict` with the given message; other database
    /// errors stay as they are.
    pub(crate) fn unique_as_conflict(err: sqlx::Error, message: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict(message.into())
            }
            _ => Error::from(err),
        }
    }
}

/// Seconds to wait before trying again when the database is unavailable.
pub const UNAVAILABLE_RETRY_SECS: i64 = 5;

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if is_outage(&err) {
            Error::Unavailable(err)
        } else {
            Error::Database(err)
        }
    }
}

/// Whether `err` says the database could not be reached or used for now, rather than that
/// the statement was wrong: no connection to be had in time, a connection cut or refused, the
/// server shutting down or starting (PostgreSQL SQLSTATE class 08, 57P01–57P03), out of
/// resources (class 53), or read-only because it is a standby now (25006, after a failover),
/// or SQLite still busy or locked after its busy timeout. (A commit that fails is none of
/// these: its outcome is unknown — `db::commit`.)
pub fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            db.code().is_some_and(|code| is_outage_code(&code, sqlite))
        }
        _ => false,
    }
}

fn is_outage_code(code: &str, sqlite: bool) -> bool {
    if sqlite {
        // SQLite's extended result codes: the primary code is the low byte (SQLITE_BUSY 5,
        // SQLITE_LOCKED 6).
        return code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
    }
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_mistakes() {
        for busy in ["5", "6", "517", "261", "773"] {
            assert!(is_outage_code(busy, true), "{busy}");
        }
        for away in [
            "08006", "08001", "57P01", "57P03", "53300", "53100", "25006",
        ] {
            assert!(is_outage_code(away, false), "{away}");
        }
        // Unique, foreign key, constraint, syntax, serialisation: not outages.
        for mistake in ["2067", "787", "1", "19"] {
            assert!(!is_outage_code(mistake, true), "{mistake}");
        }
        for mistake in ["23505", "23503", "42601", "40001"] {
            assert!(!is_outage_code(mistake, false), "{mistake}");
        }
        assert!(is_outage(&sqlx::Error::PoolTimedOut));
        assert!(!is_outage(&sqlx::Error::RowNotFound));
        let e = Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(e.kind(), ProblemKind::Unavailable);
        assert_eq!(e.kind().status(), 503);
    }
}
