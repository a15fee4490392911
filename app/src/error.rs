//! The portal's one error type: what a server function can answer, in words a person understands.
//! It travels as JSON, so the browser gets the same variant the server chose.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use protocol::problem::ProblemKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PortalError {
    #[error("You are not signed in, or your session has ended. Please sign in again.")]
    NotSignedIn,
    #[error("You are not allowed to do this.")]
    NotAllowed,
    #[error("{0} was not found. It may have been deleted.")]
    NotFound(String),
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    /// Refused by the licensing rules; the message says why.
    #[error("{0}")]
    Refused(String),
    /// What the request is about has ended or no longer exists.
    #[error("{0}")]
    Gone(String),
    #[error("Wrong e-mail address or password.")]
    BadCredentials,
    #[error("Too many failed sign-in attempts. Try again in {}.", wait_in_words(*retry_after_secs))]
    Throttled { retry_after_secs: i64 },
    #[error("The server is busy checking passwords. Try again in {}.", wait_in_words(*retry_after_secs))]
    Busy { retry_after_secs: i64 },
    #[error("This setup link cannot be used: {0}.")]
    SetupLink(String),
    #[error("Something went wrong on the server. Please try again; if it keeps happening, tell your administrator.")]
    Server,
    #[error("The server could not be reached ({0}). Check your connection and try again.")]
    Transport(String),
    #[error("The server cannot reach its database at the moment. Try again in {}.", wait_in_words(*retry_after_secs))]
    Unavailable { retry_after_secs: i64 },
}

/// "3 minutes", "1 minute", "40 seconds".
pub fn wait_in_words(secs: i64) -> String {
    if secs >= 90 {
        let minutes = (secs + 59) / 60;
        format!("{minutes} minutes")
    } else if secs >= 60 {
        "1 minute".to_owned()
    } else if secs <= 1 {
        "1 second".to_owned()
    } else {
        format!("{secs} seconds")
    }
}

impl PortalError {
    /// The kind of problem this is, as the Web API would name it; `None` for a transport
    /// failure on the browser's side.
    pub fn kind(&self) -> Option<ProblemKind> {
        Some(match self {
            PortalError::NotSignedIn | PortalError::BadCredentials => ProblemKind::Unauthorized,
            PortalError::NotAllowed => ProblemKind::Forbidden,
            PortalError::Refused(_) => ProblemKind::Refused,
            PortalError::NotFound(_) => ProblemKind::NotFound,
            PortalError::Conflict(_) => ProblemKind::Conflict,
            PortalError::SetupLink(_) | PortalError::Gone(_) => ProblemKind::Gone,
            PortalError::Invalid { .. } => ProblemKind::Invalid,
            PortalError::Throttled { .. } | PortalError::Busy { .. } => ProblemKind::Throttled,
            PortalError::Server => ProblemKind::Internal,
            PortalError::Unavailable { .. } => ProblemKind::Unavailable,
            PortalError::Transport(_) => return None,
        })
    }

    /// The HTTP status a server function answers this error with: its kind's, the same as the
    /// Web API's (502 for a transport failure, which never leaves the browser).
    pub fn status(&self) -> u16 {
        self.kind().map_or(502, ProblemKind::status)
    }

    /// How long to wait before trying again, for the errors that say.
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            PortalError::Throttled { retry_after_secs }
            | PortalError::Busy { retry_after_secs }
            | PortalError::Unavailable { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The form field this error is about, if any, so a page can put the message next to it.
    pub fn field(&self) -> Option<&str> {
        match self {
            PortalError::Invalid { field, .. } if !field.is_empty() => Some(field),
            _ => None,
        }
    }
}

impl From<protocol::input::InputError> for PortalError {
    fn from(e: protocol::input::InputError) -> Self {
        PortalError::Invalid {
            field: e.field.to_owned(),
            message: e.message,
        }
    }
}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(m) | ServerFnErrorErr::Response(m) => {
                PortalError::Transport(m)
            }
            ServerFnErrorErr::Args(m)
            | ServerFnErrorErr::Deserialization(m)
            | ServerFnErrorErr::Serialization(m) => PortalError::Invalid {
                field: String::new(),
                message: format!("The form could not be read: {m}"),
            },
            ServerFnErrorErr::MissingArg(m) => PortalError::Invalid {
                field: m.clone(),
                message: format!("The field \u{201c}{m}\u{201d} is missing."),
            },
            _ => PortalError::Server,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_in_words(900), "15 minutes");
        assert_eq!(wait_in_words(61), "1 minute");
        assert_eq!(wait_in_words(30), "30 seconds");
        assert_eq!(wait_in_words(0), "1 second");
    }
}
