//! The domain's error type. Each variant is something a caller can act on; database and internal
//! failures carry their cause for the log, and the boundaries show only a generic message for them.

use protocol::input::InputError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InputError),
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The request is understood but the rules refuse it; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
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
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    #[error("this setup link is not valid: {0}")]
    SetupLink(&'static str),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Maps a unique-constraint violation to a `Conflict` with the given message; other database
    /// errors stay as they are.
    pub(crate) fn unique_as_conflict(err: sqlx::Error, message: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict(message.into())
            }
            _ => Error::Database(err),
        }
    }
}
